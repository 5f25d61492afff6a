/**
 * Which model `npm start` serves, and whether it trains one first.
 *
 * With nothing serving, it trains the requested architecture (mlp by default)
 * and promotes it whatever the quality gate says: any model beats a 503.
 * With a model serving, `--arch` asks for that architecture: a stored version
 * of it is promoted if it passes the gate, otherwise one is trained and the
 * gate decides as it does for `npm run train`. The decision is a pure function
 * (planStartup) so its rules are tested without training anything.
 */
import type { Config } from '#lib/config';
import { PointerChangedError } from '#lib/errors';
import type { Arch } from '#lib/training/model';
import type { ProgressSink } from '#lib/progress';
import { qualityGate } from '#lib/training/quality-gate';
import type { ModelStore } from '#lib/storage/store';
import { parseTrainArgs, runTraining } from '../../functions/train/job.ts';

export interface StoredModel {
  version: string;
  arch: Arch;
  accuracy: number;
  epochs: number;
}

export type StartupPlan =
  | { action: 'serve'; version: string }
  | { action: 'train'; arch: Arch; force: boolean }
  | { action: 'promote'; version: string }
  /** A stored version of the requested architecture, trained at least as long, was refused by the gate. */
  | { action: 'keep'; version: string; refused: string; reasons: string[] };

export interface StartupRequest {
  /** Unset when `--arch` was not given: then whatever serves is fine. */
  arch?: Arch;
  /** Epochs a training would run. */
  epochs: number;
}

const better = (a: StoredModel, b: StoredModel) =>
  a.accuracy !== b.accuracy ? a.accuracy > b.accuracy : a.version > b.version;
const best = (models: StoredModel[]) =>
  models.reduce<StoredModel | undefined>((top, m) => (!top || better(m, top) ? m : top), undefined);

export function planStartup(
  request: StartupRequest,
  serving: Omit<StoredModel, 'epochs'> | undefined,
  stored: StoredModel[],
  minAccuracy?: number,
): StartupPlan {
  if (!serving) return { action: 'train', arch: request.arch ?? 'mlp', force: true };
  if (!request.arch || serving.arch === request.arch) return { action: 'serve', version: serving.version };
  const candidates = stored.filter((m) => m.arch === request.arch && m.version !== serving.version);
  const gate = (m: StoredModel) => qualityGate(m, serving, minAccuracy);
  const top = best(candidates);
  if (top && gate(top).passed) return { action: 'promote', version: top.version };
  // Training is seeded, so the same run again would be refused the same way; only a longer one is worth the time.
  const asLong = best(candidates.filter((m) => m.epochs >= request.epochs));
  if (asLong)
    return { action: 'keep', version: serving.version, refused: asLong.version, reasons: gate(asLong).reasons };
  return { action: 'train', arch: request.arch, force: false };
}

async function storedModels(store: ModelStore, arch: Arch | undefined): Promise<StoredModel[]> {
  return (await store.allMetrics())
    .filter((m) => m.arch === arch)
    .map((m) => ({ version: m.version, arch: m.arch, accuracy: m.test.accuracy, epochs: m.training.epochs }));
}

/** Carries out planStartup against the store, training in this process when it must. */
export async function prepareModel(
  request: { arch?: Arch; epochs?: string },
  store: ModelStore,
  config: Config,
  progress: ProgressSink,
): Promise<void> {
  const trainArgs = parseTrainArgs(
    [...(request.arch ? ['--arch', request.arch] : []), ...(request.epochs ? ['--epochs', request.epochs] : [])],
    {},
  );
  if (trainArgs === 'help') return;
  const basis = await store.pointerState();
  const serving = basis.pointer;
  const plan = planStartup(
    { arch: request.arch, epochs: trainArgs.epochs },
    serving && { version: serving.version, arch: serving.arch, accuracy: serving.accuracy },
    serving ? await storedModels(store, request.arch) : [],
    config.minAccuracy,
  );
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  switch (plan.action) {
    case 'serve':
      say(`Serving the promoted model ${plan.version} (test accuracy ${pct(serving!.accuracy)}).`);
      return;
    case 'promote':
      try {
        await store.promote(plan.version, {
          basedOn: basis,
          by: {
            actor: 'operator',
            reason: `npm start asked for ${request.arch}: a stored version that passes the quality gate`,
          },
        });
      } catch (error) {
        if (!(error instanceof PointerChangedError)) throw error;
        say(
          `Did not promote ${plan.version}: the serving pointer changed while this start-up was deciding (${error.message}).`,
        );
        return;
      }
      say(
        `Serving ${plan.version}, a stored ${request.arch} version that passes the quality gate (it replaces ${serving!.version}).`,
      );
      return;
    case 'keep':
      say(
        `Still serving ${plan.version}: the stored ${request.arch} version ${plan.refused} was refused by the quality gate (${plan.reasons.join('; ')}).\n` +
          `Serve it anyway with \`npm run promote -- ${plan.refused}\`, or ask for a longer training with --epochs.`,
      );
      return;
    case 'train': {
      say(
        plan.force
          ? `No model is serving yet: training one (${plan.arch}). This happens once; later starts reuse it.`
          : `${serving!.version} is serving, not a ${plan.arch}: training one (${trainArgs.epochs} epochs). It replaces it if it passes the quality gate.`,
      );
      // Only the first model skips the gate: a model under it still beats none; the override is logged.
      const reason = plan.force ? 'first model for the local stack' : undefined;
      const outcome = await runTraining({ ...trainArgs, arch: plan.arch, force: plan.force, reason }, config, progress);
      say(`Trained ${outcome.version}: test accuracy ${pct(outcome.testAccuracy)}.`);
      if (outcome.notPromoted) {
        say(`Not serving it: ${outcome.notPromoted}.`);
      } else if (!outcome.promoted) {
        say(
          `The quality gate refused it (${outcome.gate.reasons.join('; ')}); still serving ${serving!.version}. Serve it anyway with \`npm run promote -- ${outcome.version}\`.`,
        );
      }
    }
  }
}
