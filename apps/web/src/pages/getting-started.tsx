/** Getting started: the exact commands from an empty workspace to a reachable service. */

import { Copyable } from '../components.js';
import { CreateApiKey } from './api-keys.js';

/** `fromOverview`: shown at / because the workspace is empty, so it says where the overview went. */
export function GettingStarted({ fromOverview = false }: { fromOverview?: boolean }) {
  const origin = window.location.origin;
  return (
    <section aria-labelledby="start-title">
      <h1 id="start-title">Getting started</h1>
      {fromOverview ? <p className="muted">This workspace has no agents or services yet. Once it has, this page shows the overview: what is online, its health, its traffic.</p> : null}
      <ol className="steps">
        <li>
          <h2>Build the <code>connect</code> CLI</h2>
          <p>On each machine, from a clone of the Private Connect repository (Node 20.19 or later):</p>
          <pre><code>{`npm install\nnpm run build\nnpm link -w apps/connect`}</code></pre>
        </li>
        <li>
          <h2>Create an API key</h2>
          <CreateApiKey />
        </li>
        <li>
          <h2>Enrol the machine</h2>
          <Copyable text={`connect up --hub ${origin} --api-key <key you create here>`} label="Copy command" />
        </li>
        <li>
          <h2>Expose a service</h2>
          <p>On the machine that runs it:</p>
          <Copyable text="connect expose localhost:5432 --name prod-db" label="Copy command" />
        </li>
        <li>
          <h2>Reach it from another machine</h2>
          <p>After <code>connect up</code> there too:</p>
          <Copyable text="connect reach prod-db" label="Copy command" />
        </li>
      </ol>
    </section>
  );
}
