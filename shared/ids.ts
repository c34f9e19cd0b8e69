import { customAlphabet } from 'nanoid';

const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
const shortId = customAlphabet(alphabet, 10);

/** A worker's id, unique within a run. */
export type WorkerId = string & { readonly __brand: 'WorkerId' };
/** A run's id, also the default name of its output folder suffix. */
export type RunId = string & { readonly __brand: 'RunId' };

/** New worker id (`w-` + 10 lower-case alphanumerics). */
export function newWorkerId(): WorkerId {
  return `w-${shortId()}` as WorkerId;
}

/** New run id (`run-` + 10 lower-case alphanumerics). */
export function newRunId(): RunId {
  return `run-${shortId()}` as RunId;
}

/** New message id (nanoid, 21 url-safe characters). */
export { nanoid as newMessageId } from 'nanoid';
