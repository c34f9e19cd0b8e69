/**
 * Building frames: fills in `v`, `kind` and a fresh `id` so senders only write the payload.
 */
import { errorCodeOf } from '../errors.js';
import { newMessageId } from '../ids.js';
import type { ErrorFrame, Message, MessageBody, MessageOf, MsgKind } from './messages.js';
import { PROTOCOL_VERSION } from './messages.js';

/**
 * A frame of kind `kind` with `v` = {@link PROTOCOL_VERSION} and a fresh id (or `options.id`, for fixtures).
 * Fields are copied shallowly: tensor bytes are not copied.
 */
export function makeMessage<K extends MsgKind>(kind: K, body: MessageBody<K>, options?: { readonly id?: string }): MessageOf<K> {
  return { v: PROTOCOL_VERSION, kind, id: options?.id ?? newMessageId(), ...body } as unknown as MessageOf<K>;
}

/** A reply to `request`: like {@link makeMessage} with `replyTo` set to the request's id. */
export function makeReply<K extends MsgKind>(
  kind: K,
  request: Message,
  body: Omit<MessageBody<K>, 'replyTo'>,
  options?: { readonly id?: string },
): MessageOf<K> {
  return makeMessage(kind, { ...body, replyTo: request.id } as unknown as MessageBody<K>, options);
}

/**
 * An `error` frame describing `err`: its stable code (E_INTERNAL for errors that are not ours) and message.
 * @param retryable whether repeating the request may succeed. @default false
 */
export function makeErrorFrame(err: unknown, options?: { readonly replyTo?: string; readonly retryable?: boolean; readonly id?: string }): ErrorFrame {
  const code = errorCodeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  return makeMessage('error', {
    code,
    message,
    retryable: options?.retryable ?? false,
    ...(options?.replyTo !== undefined ? { replyTo: options.replyTo } : {}),
  }, options);
}
