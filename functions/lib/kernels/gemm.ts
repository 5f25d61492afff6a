/**
 * A float32 matrix product C = A·B for wasm that needs no packing: a SIMD
 * loop (built by wasm-module.ts on the backend's memory) that reads B's rows
 * where they lie. The stock kernel hands every product to XNNPACK, which
 * first packs B into its own layout and caches that by tensor: in training
 * B is new on every call (weights after each Adam step, gradients), so each
 * product paid for packing — measured ~1 ms for the MLP's [784,256] weights
 * against ~2.3 ms for the product itself — plus, for transposed operands, a
 * Transpose kernel. Here A may be read transposed for free (its stride is a
 * parameter), so of the MLP's products only dy·Wᵀ still transposes (W, in a
 * plain loop).
 *
 * Blocks of 4 rows × 8 columns: eight f32x4 accumulators, each step of the
 * inner loop splats one element from each of four rows of A and multiplies
 * it into two vectors of a row of B. Columns outermost, so one 8-column
 * panel of B stays in cache while every row block of A passes over it.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { F32X4_LANES, I32, V128, instantiate, op } from './wasm-module.ts';

/** Row and column block of the kernel: M must be a multiple of ROWS, N of COLS. */
export const ROWS = 4;
export const COLS = 8;

/**
 * a, b, c (heap offsets), M, N, K, then A's strides in bytes between rows
 * (i) and between columns (k) — K·4 and 4 for A as stored, 4 and M·4 for a
 * stored Aᵀ — and B's stride between rows.
 */
type GemmArgs = [number, number, number, number, number, number, number, number, number];
export type Gemm = (...args: GemmArgs) => void;

// Parameters, then locals.
const [A, B, C, M, N, K, A_ROW, A_COL, B_ROW] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
const [I, J, KK, PA0, PA1, PA2, PA3, PB, PC, ROW_BYTES] = [9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
const ACC = 19; // eight accumulators: row r, half h at ACC + 2r + h
const [B0, B1, SPLAT] = [27, 28, 29];

const get = op.localGet;
const set = op.localSet;
const addTo = (local: number, stride: number) => [...get(local), ...get(stride), ...op.i32Add, ...set(local)];
const { add: f32x4Add, mul: f32x4Mul } = F32X4_LANES;

/** acc[r] += splat(A[row r, k]) · B[k, j..j+8] */
const multiplyRow = (r: number) => [
  ...get(PA0 + r), ...op.f32Load(), ...op.f32x4Splat, ...set(SPLAT),
  ...get(ACC + 2 * r), ...get(SPLAT), ...get(B0), ...f32x4Mul, ...f32x4Add, ...set(ACC + 2 * r),
  ...get(ACC + 2 * r + 1), ...get(SPLAT), ...get(B1), ...f32x4Mul, ...f32x4Add, ...set(ACC + 2 * r + 1),
];

const block = [
  // Row pointers into A for rows i..i+3.
  ...get(A), ...get(I), ...get(A_ROW), ...op.i32Mul, ...op.i32Add, ...set(PA0),
  ...get(PA0), ...get(A_ROW), ...op.i32Add, ...set(PA1),
  ...get(PA1), ...get(A_ROW), ...op.i32Add, ...set(PA2),
  ...get(PA2), ...get(A_ROW), ...op.i32Add, ...set(PA3),
  ...get(B), ...get(J), ...op.i32Add, ...set(PB),
  ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap((n) => [...op.v128Zero, ...set(ACC + n)]),
  ...op.i32Const(0), ...set(KK),
  ...op.loopWhileBelow(KK, K, 1, [
    ...get(PB), ...op.v128Load(), ...set(B0),
    ...get(PB), ...op.v128Load(16), ...set(B1),
    ...[0, 1, 2, 3].flatMap(multiplyRow),
    ...[PA0, PA1, PA2, PA3].flatMap((pointer) => addTo(pointer, A_COL)),
    ...addTo(PB, B_ROW),
  ]),
  // Store the block: row r at C + (i + r)·N·4 + j.
  ...get(C), ...get(I), ...get(ROW_BYTES), ...op.i32Mul, ...op.i32Add, ...get(J), ...op.i32Add, ...set(PC),
  ...[0, 1, 2, 3].flatMap((r) => [
    ...get(PC), ...get(ACC + 2 * r), ...op.v128Store(),
    ...get(PC), ...get(ACC + 2 * r + 1), ...op.v128Store(16),
    ...addTo(PC, ROW_BYTES),
  ]),
];

/** One compiled product per backend instance: it is bound to that backend's memory. */
const compiled = new WeakMap<BackendWasm, Gemm>();

export function gemmFor(backend: BackendWasm): Gemm {
  let gemm = compiled.get(backend);
  if (gemm === undefined) {
    gemm = build(backend);
    compiled.set(backend, gemm);
  }
  return gemm;
}

function build(backend: BackendWasm): Gemm {
  return instantiate<GemmArgs>(backend, {
    params: [I32, I32, I32, I32, I32, I32, I32, I32, I32],
    locals: [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, ...new Array<typeof V128>(11).fill(V128)],
    body: [
      ...get(N), ...op.i32Const(2), ...op.i32Shl, ...set(ROW_BYTES),
      ...op.loopWhileBelow(J, ROW_BYTES, COLS * 4, [
        ...op.i32Const(0), ...set(I),
        ...op.loopWhileBelow(I, M, ROWS, block),
      ]),
    ],
  });
}
