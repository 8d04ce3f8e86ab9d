/**
 * The TypeScript side of ROUTE_SCHEMAS, by route: what a client sends (path parameters, query, body) and what a
 * success answers. The SDK client and the dashboard type their calls with these, so a route whose contract changes
 * no longer compiles where it is called. Types only: a bundle that imports them (`import type`) carries no TypeBox.
 */

import type { Static, TSchema } from '@sinclair/typebox';
import type { ApiRoute, ROUTE_SCHEMAS } from './routes.js';

type Contract<R extends ApiRoute> = (typeof ROUTE_SCHEMAS)[R];
type Part<R extends ApiRoute, K extends string> = Contract<R> extends { readonly [P in K]: infer S extends TSchema } ? Static<S> : undefined;

/** The path parameters of a route (`:id` ...), or undefined when it has none. */
export type RouteParams<R extends ApiRoute> = Part<R, 'params'>;
/** The query parameters of a route, or undefined when it takes none. */
export type RouteQuery<R extends ApiRoute> = Part<R, 'querystring'>;
/** The JSON body of a route, or undefined when it takes none. */
export type RouteBody<R extends ApiRoute> = Part<R, 'body'>;

type Responses<R extends ApiRoute> = Contract<R>['response'];
type SuccessStatus = 200 | 201 | 202 | 204;
type SuccessSchema<R extends ApiRoute> = Responses<R>[Extract<keyof Responses<R>, SuccessStatus>];
/**
 * What a route answers when it succeeds: the JSON of its 200, 201 or 202 schema; undefined for 204 No Content.
 * Routes that answer text (GET /metrics, GET /v1/events) answer `string` here; their clients read the text.
 */
export type RouteAnswer<R extends ApiRoute> =
  SuccessSchema<R> extends infer S ? (S extends TSchema ? (Static<S> extends null ? undefined : Static<S>) : string) : never;

/** The routes of the API that answer JSON (every one but /metrics, /v1/events and the magic link's redirect). */
export type JsonRoute = { [R in ApiRoute]: SuccessSchema<R> extends TSchema ? R : never }[ApiRoute];

type Input<K extends string, T> = [T] extends [undefined] ? { readonly [P in K]?: undefined } : { readonly [P in K]: T };
/** What one call of a route sends: its path parameters, query and body, each required when the route has it. */
export type RouteInput<R extends ApiRoute> = Input<'params', RouteParams<R>> & Input<'query', RouteQuery<R>> & Input<'body', RouteBody<R>>;
