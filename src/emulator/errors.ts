/**
 * Alibaba Cloud style API errors raised by the emulator's action handlers and wire layer.
 *
 * The HTTP server turns an {@link ApiError} into Alibaba's error body
 * `{ RequestId, HostId, Code, Message, Recommend }` with the error's HTTP status.
 */
export class ApiError extends Error {
  /** Alibaba error code, e.g. `InvalidParameter`, `EntityNotExists.Template`. */
  readonly code: string;
  /** HTTP status sent with the error body (400, 403, 404, 500, 503 …). */
  readonly httpStatus: number;
  /** Extra fields of the error body, e.g. `AccessDeniedDetail` of a `Forbidden.RAM` (ram.ts). */
  readonly body: Record<string, unknown> | undefined;

  constructor(httpStatus: number, code: string, message: string, body?: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.httpStatus = httpStatus;
    this.body = body;
  }
}

/** `MissingParameter` (400) naming the absent parameter, in the platform's message wording. */
export function missingParameter(name: string): ApiError {
  return new ApiError(
    400,
    'MissingParameter',
    `The input parameter "${name}" that is mandatory for processing this request is not supplied.`,
  );
}

/** `InvalidParameter` (400) naming the parameter and why it was rejected. */
export function invalidParameter(name: string, why: string): ApiError {
  return new ApiError(400, 'InvalidParameter', `The specified parameter "${name}" is not valid: ${why}`);
}
