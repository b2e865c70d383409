/** Writes the JSON Schema of the planner snapshot, generated from its zod schema. `npm run schema`. */
import { writeFileSync } from 'node:fs';
import { jsonSchema } from '../core/planner/model.ts';

export const SCHEMA_PATH = new URL('../docs/schema/planner-snapshot.schema.json', import.meta.url);

export function schemaText(): string {
  return `${JSON.stringify({ $id: 'https://xenha.invalid/schema/planner-snapshot.json', title: 'xenha planner snapshot', ...(jsonSchema() as object) }, null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(SCHEMA_PATH, schemaText());
  process.stdout.write(`wrote ${SCHEMA_PATH.pathname}\n`);
}
