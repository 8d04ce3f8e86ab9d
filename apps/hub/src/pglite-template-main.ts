/**
 * Part of `npm run build`: makes apps/hub/dist/pglite-template (db/pglite-template.ts), the empty embedded database
 * a hub's first start copies instead of running initdb. Kept when the installed PGlite made it.
 */

import { makePgliteTemplate, TEMPLATE_DIR, templateUsable } from './db/index.js';

if (templateUsable(TEMPLATE_DIR)) {
  process.stdout.write(`pglite template: ${TEMPLATE_DIR} is up to date\n`);
} else {
  await makePgliteTemplate(TEMPLATE_DIR);
  process.stdout.write(`pglite template: made ${TEMPLATE_DIR}\n`);
}
