/**
 * Typed errors. Each carries the HTTP status and a stable machine-readable
 * code; `errorResult` in http.ts is the one place they become responses, and
 * anything else is a 500 with a generic body.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, code = 'bad_request') {
    super(400, code, message);
  }
}

/** No credentials, or not the right ones; `scheme` is the one the caller should use (WWW-Authenticate). */
export class UnauthorizedError extends AppError {
  constructor(
    message: string,
    readonly scheme = 'Bearer',
  ) {
    super(401, 'unauthorized', message);
  }
}

export class NotFoundError extends AppError {
  constructor(message: string, code = 'not_found') {
    super(404, code, message);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string, code = 'payload_too_large') {
    super(413, code, message);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string, code = 'unsupported_media_type') {
    super(415, code, message);
  }
}

/** The request is valid but the thing it names is in a state that forbids it (e.g. an incomplete version). */
export class ConflictError extends AppError {
  constructor(message: string, code = 'conflict') {
    super(409, code, message);
  }
}

/** The service cannot answer yet (no model promoted, storage unreachable); the caller may retry. */
export class UnavailableError extends AppError {
  constructor(
    message: string,
    code = 'unavailable',
    readonly retryAfterSeconds?: number,
  ) {
    super(503, code, message);
  }
}

/** The caller sends faster than the route allows; `retryAfterSeconds` says when a retry can pass. */
export class TooManyRequestsError extends AppError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(429, 'too_many_requests', message);
  }
}

export class UpstreamError extends AppError {
  constructor(message: string, code = 'upstream_error') {
    super(502, code, message);
  }
}

/** A stored model version is missing, incomplete or does not match its recorded checksum. */
export class ModelIntegrityError extends Error {
  override name = 'ModelIntegrityError';
}

/** The serving pointer (models/latest.json) is not a pointer: wrong shape, bad version name, not JSON, too big. */
export class PointerInvalidError extends ModelIntegrityError {
  override name = 'PointerInvalidError';
}

/** The serving pointer changed between the read a decision was based on and the write that acts on it. */
export class PointerChangedError extends ConflictError {
  constructor(message: string) {
    super(message, 'pointer_changed');
  }
}

/** A conditional write found the object changed (S3's 412 PreconditionFailed, or 409 ConditionalRequestConflict). */
export class WriteConflictError extends Error {
  override name = 'WriteConflictError';
  constructor(readonly key: string) {
    super(`${key} changed since it was read; the conditional write was refused`);
  }
}

/** An object is larger than the reader allows; nothing past the limit was read. */
export class ObjectTooLargeError extends Error {
  override name = 'ObjectTooLargeError';
  constructor(
    readonly key: string,
    readonly maxBytes: number,
    size?: number,
  ) {
    super(`${key} is ${size === undefined ? 'over' : `${size} bytes, over`} the ${maxBytes}-byte limit for it`);
  }
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}
