import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/**
 * The `--import` argument that lets a child Node process run this project's TypeScript sources, as an absolute
 * URL so it resolves whatever the child's working directory is.
 */
export const TSX_IMPORT_URL: string = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
