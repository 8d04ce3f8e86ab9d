/**
 * `connect up --hub URL` without an API key: enrol by device code, approved by a signed-in member in a browser.
 * Returns the new agent's enrolment (its token included); `up` saves it as it saves one traded for an API key.
 */

import { hostname, platform } from 'node:os';
import { deviceLogin } from '@private-connect/sdk';
import type { Context } from '../context.js';
import { color } from '../output.js';

export async function enrolByDevice(ctx: Context, hubUrl: string, label: string): ReturnType<typeof deviceLogin> {
  return deviceLogin({
    hubUrl,
    allowInsecure: ctx.env.allowInsecure,
    device: { label, hostname: hostname(), platform: platform() },
    onCode: (code) =>
      ctx.out.event(
        { type: 'device_code', userCode: code.user_code, verificationUri: code.verification_uri, expiresIn: code.expires_in },
        [
          `To enrol ${color.bold(label)}, open ${code.verification_uri_complete ?? code.verification_uri} signed in to the hub,`,
          `and approve the code ${color.bold(code.user_code)} for the workspace this machine should join.`,
          color.dim(`  waiting for approval (the code expires in ${Math.round(code.expires_in / 60)} minutes; scripts can use --api-key instead)`),
        ].join('\n'),
      ),
  });
}
