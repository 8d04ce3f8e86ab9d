/** The guard's table: what each kind of principal and each role may NOT do, and the one "not found" answer. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectError } from '@private-connect/protocol';
import { POLICY, authorize, isAllowed, notFound, sameWorkspace, type Action, type GuardSubject } from '../src/auth/guard.js';

const agent: GuardSubject = { kind: 'agent' };
const apiKey: GuardSubject = { kind: 'api_key' };
const owner: GuardSubject = { kind: 'user', role: 'owner' };
const admin: GuardSubject = { kind: 'user', role: 'admin' };
const member: GuardSubject = { kind: 'user', role: 'member' };
const ACTIONS = Object.keys(POLICY) as Action[];

function refuses(principal: GuardSubject, action: Action): void {
  assert.equal(isAllowed(principal, action), false, `${JSON.stringify(principal)} must not ${action}`);
  assert.throws(
    () => authorize(principal, action),
    (err: unknown) => err instanceof ConnectError && err.code === 'FORBIDDEN' && err.status === 403,
    `${action} must throw FORBIDDEN`,
  );
}

describe('guard', () => {
  it('refuses an agent token everything but reading its own workspace, using the relay and sharing its services', () => {
    const allowed = ACTIONS.filter((a) => isAllowed(agent, a)).sort();
    assert.deepEqual(allowed, ['agents.connect', 'agents.list', 'agents.rotate_own_token', 'links.manage', 'me.read', 'relay.use', 'services.list', 'shares.join', 'shares.manage', 'workspace.read']);
    for (const action of ['agents.enrol', 'agents.revoke', 'agents.rotate', 'api_keys.manage', 'audit.read', 'members.manage', 'members.read', 'invitations.manage', 'workspace.manage', 'workspace.settings', 'workspace.create', 'devices.approve', 'events.read'] as const) {
      refuses(agent, action);
    }
  });

  it('refuses an API key the agent WebSocket, the relay and member or workspace management', () => {
    for (const action of ['agents.connect', 'relay.use', 'agents.rotate_own_token', 'members.manage', 'workspace.manage', 'workspace.create', 'devices.approve'] as const) {
      refuses(apiKey, action);
    }
    for (const action of ['services.list', 'agents.list', 'agents.enrol', 'agents.revoke', 'agents.rotate', 'api_keys.manage', 'audit.read', 'invitations.manage', 'workspace.settings'] as const) {
      assert.ok(isAllowed(apiKey, action), action);
    }
  });

  it('refuses a member key management, member management, revocation and the audit log', () => {
    for (const action of ['api_keys.manage', 'members.manage', 'invitations.manage', 'agents.revoke', 'agents.rotate', 'audit.read', 'workspace.manage', 'workspace.settings', 'agents.connect', 'relay.use', 'shares.manage', 'shares.join', 'links.manage'] as const) {
      refuses(member, action);
    }
    for (const action of ['services.list', 'agents.list', 'agents.enrol', 'members.read', 'me.read'] as const) assert.ok(isAllowed(member, action), action);
  });

  it('lets every role and an API key, but not an agent token, follow the live events of its workspace', () => {
    for (const who of [owner, admin, member, apiKey]) assert.ok(isAllowed(who, 'events.read'), JSON.stringify(who));
    refuses(agent, 'events.read');
  });

  it('lets an admin manage keys and members but not the workspace itself; only the owner may', () => {
    for (const action of ['api_keys.manage', 'members.manage', 'invitations.manage', 'agents.revoke', 'agents.rotate', 'audit.read', 'shares.manage', 'shares.join', 'links.manage', 'workspace.settings'] as const) assert.ok(isAllowed(admin, action), action);
    refuses(admin, 'workspace.manage');
    assert.ok(isAllowed(owner, 'workspace.manage'));
    refuses(owner, 'agents.connect');
  });

  it('refuses unknown kinds, users without a role or with an unknown role, and unknown actions', () => {
    const strangers: GuardSubject[] = [{ kind: 'user' }, { kind: 'user', role: 'superuser' }, { kind: 'root' }, { kind: '' }];
    for (const who of strangers) for (const action of ACTIONS) refuses(who, action);
    refuses(owner, 'no.such.action' as Action);
    refuses(apiKey, 'toString' as Action);
  });

  it('answers a missing object and one of another workspace with the same error', () => {
    const mine = { workspace_id: 'w1', id: 'a' };
    const theirs = { workspace_id: 'w2', id: 'a' };
    assert.equal(sameWorkspace({ workspaceId: 'w1' }, mine, 'agent', 'a'), mine);
    const capture = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err as ConnectError;
      }
      assert.fail('expected an error');
    };
    const hidden = capture(() => sameWorkspace({ workspaceId: 'w1' }, theirs, 'agent', 'a'));
    const missing = capture(() => sameWorkspace({ workspaceId: 'w1' }, undefined, 'agent', 'a'));
    assert.deepEqual(hidden.toJSON(), missing.toJSON());
    assert.deepEqual(missing.toJSON(), { code: 'NOT_FOUND', message: 'Agent not found: a' });
    assert.equal(hidden.status, 404);
    assert.deepEqual(notFound('service', 'db').toJSON(), { code: 'SERVICE_NOT_FOUND', message: 'Service not found: db' });
    assert.equal(notFound('api_key', 'x'.repeat(500)).message.length, 'API key not found: '.length + 80, 'the echoed reference is cut');
  });
});
