/**
 * The pointer's history: one object per change of `models/latest.json`, under
 * `audit/pointer/YYYY-MM-DD/<time>-<random>.json`. S3 has no append, so each
 * change is its own object; the key starts with the time, so listing the
 * prefix gives the history in order. ModelStore writes a record after each
 * conditional pointer write succeeds (never for a write that failed or changed
 * nothing); the caller says who acted and why.
 */
import { randomBytes } from 'node:crypto';
import type { Candidate, LatestPointer } from './store.ts';

export const AUDIT_PREFIX = 'audit/pointer/';
/** A record is a few hundred bytes; a reason is capped below. */
export const AUDIT_RECORD_MAX_BYTES = 16 * 1024;
/** Long enough for a decision's reason or an operator's sentence, short enough to stay one line in a listing. */
export const AUDIT_REASON_MAX_CHARS = 500;

export const AUDIT_ACTORS = ['operator', 'schedule', 'training', 'rollback'] as const;
export type AuditActor = (typeof AUDIT_ACTORS)[number];

/** Who changed the pointer and why: what every caller of a pointer write passes. */
export interface ChangedBy {
  actor: AuditActor;
  reason?: string;
}

export type AuditAction = 'promote' | 'rollback' | 'set-candidate' | 'clear-candidate' | 'pin' | 'unpin';

export interface AuditRecord {
  time: string;
  actor: AuditActor;
  action: AuditAction;
  /** The serving version before and after; null when there was none before. */
  from: string | null;
  to: string;
  /** Present when the candidate changed: what it was and what it is now. */
  candidate?: { from: Candidate | null; to: Candidate | null };
  reason: string | null;
}

const sameCandidate = (a: Candidate | undefined, b: Candidate | undefined) =>
  JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The record of a write from `before` to `after`, named by what changed first of: the version, the candidate, the pin. */
export function auditRecord(
  before: LatestPointer | undefined,
  after: LatestPointer,
  by: ChangedBy,
  time: Date,
): AuditRecord {
  const from = before?.version ?? null;
  const candidateChanged = !sameCandidate(before?.candidate, after.candidate);
  let action: AuditAction;
  // Version names sort by creation time: going back to an older one is a rollback, unless it was the candidate
  // (a candidate trained earlier and tried on live traffic is promoted, not rolled back to).
  const goesBack = from !== null && after.version < from && before?.candidate?.version !== after.version;
  if (from !== after.version) action = goesBack ? 'rollback' : 'promote';
  else if (candidateChanged) action = after.candidate ? 'set-candidate' : 'clear-candidate';
  else if (Boolean(before?.pinned) !== Boolean(after.pinned)) action = after.pinned ? 'pin' : 'unpin';
  // The serving version promoted again: its promotedAt (and so the rollback watch) starts over.
  else action = 'promote';
  return {
    time: time.toISOString(),
    actor: by.actor,
    action,
    from,
    to: after.version,
    ...(candidateChanged ? { candidate: { from: before?.candidate ?? null, to: after.candidate ?? null } } : {}),
    reason: by.reason ?? null,
  };
}

let sequence = 0;

/**
 * `audit/pointer/2026-12-03/20261203T092000.123Z-000042-1a2b3c4d.json`: sorts by
 * time; within one millisecond, this process's changes keep their order by
 * the sequence number, and the random part keeps two writers apart.
 */
export function auditKey(time: Date): string {
  const iso = time.toISOString();
  sequence = (sequence + 1) % 1_000_000;
  const order = String(sequence).padStart(6, '0');
  return `${AUDIT_PREFIX}${iso.slice(0, 10)}/${iso.replace(/[-:]/g, '')}-${order}-${randomBytes(4).toString('hex')}.json`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const ACTIONS: readonly string[] = ['promote', 'rollback', 'set-candidate', 'clear-candidate', 'pin', 'unpin'];

/** A stored record, or why it is not one (a listing shows the problem rather than stopping). */
export function parseAuditRecord(bytes: Buffer): AuditRecord | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { problem: 'is not valid JSON' };
  }
  if (!isObject(value)) return { problem: 'is not a JSON object' };
  const { time, actor, action, from, to, reason } = value;
  if (typeof time !== 'string' || Number.isNaN(Date.parse(time))) return { problem: 'has no time' };
  if (!(AUDIT_ACTORS as readonly unknown[]).includes(actor)) return { problem: 'has an unknown actor' };
  if (!ACTIONS.includes(action as string)) return { problem: 'has an unknown action' };
  if (!(from === null || typeof from === 'string') || typeof to !== 'string') return { problem: 'has no from or to' };
  if (!(reason === null || typeof reason === 'string')) return { problem: 'has a reason that is not text' };
  return value as unknown as AuditRecord;
}
