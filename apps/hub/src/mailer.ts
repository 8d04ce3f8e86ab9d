/**
 * Delivers sign-in and invitation links: by SMTP (nodemailer) when SMTP_URL is set, otherwise by printing the link
 * on the hub's console (stderr; the embedded default, for an operator reading it) while the log records, at info
 * level, that a link was printed. The link itself does not go through the logger: the logger redacts link tokens,
 * and like the one-time API key in welcome.ts a secret meant for a person must not enter log files.
 */

import type { Transporter } from 'nodemailer';
import type { Logger } from './logger.js';

export interface LinkMail {
  to: string;
  subject: string;
  /** The link itself: printed on the console without SMTP, the body of the mail with it. */
  link: string;
  /** One sentence above the link. */
  intro: string;
}

export interface Mailer {
  /** Sends the mail; resolves once handed over (SMTP) or logged. Failures are logged here, not thrown. */
  send(mail: LinkMail): Promise<void>;
}

export interface MailerOptions {
  smtpUrl?: string;
  smtpFrom: string;
  log: Logger;
  /** Where links are printed without SMTP. */
  console: NodeJS.WritableStream;
}

export function createMailer(options: MailerOptions): Mailer {
  const { log } = options;
  if (!options.smtpUrl) {
    return {
      async send(mail) {
        options.console.write(`${mail.subject}: link for ${mail.to}: ${mail.link}\n`);
        log.info({ to: mail.to, subject: mail.subject }, 'link printed on the console (SMTP_URL is not set, so it is not mailed)');
      },
    };
  }
  const smtpUrl = options.smtpUrl;
  // nodemailer (3 MiB of heap) is loaded with the first mail, not by every hub.
  let transport: Promise<Transporter> | undefined;
  return {
    async send(mail) {
      try {
        transport ??= import('nodemailer').then(({ default: nodemailer }) => nodemailer.createTransport(smtpUrl));
        await (await transport).sendMail({ from: options.smtpFrom, to: mail.to, subject: mail.subject, text: `${mail.intro}\n\n${mail.link}\n` });
        log.info({ to: mail.to, subject: mail.subject }, 'sign-in link mailed');
      } catch (err) {
        // The caller answers 202 whatever happens (no enumeration); the operator learns about it here.
        log.error({ err, to: mail.to }, 'could not send mail through SMTP_URL');
      }
    },
  };
}
