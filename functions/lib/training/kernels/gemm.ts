/**
 * A float32 matrix product C = A·B for wasm without XNNPACK's packing: a
 * SIMD loop (built by wasm-module.ts on the backend's memory). The stock
 * kernel hands every product to XNNPACK, which first packs B into its own
 * layout and caches that by tensor: in training B is new on every call
 * (weights after each Adam step, gradients), so each product paid for
 * packing — measured ~1 ms for the MLP's [784,256] weights against ~2.3 ms
 * for the product itself — plus, for transposed operands, a Transpose
 * kernel. Here neither operand is transposed first: A is read at whatever
 * strides it has, and a transposed B is gathered into the panel copy below.
 *
 * Blocks of 4 rows × 8 columns: eight f32x4 accumulators, each step of the
 * inner loop splats one element from each of four rows of A and multiplies
 * it into two vectors of a row of B. Columns outermost: each 8-column panel
 * of B is first copied to a contiguous scratch buffer (K·32 bytes, which
 * stays in L1 while every row block of A passes over it; read in place, at
 * B's row stride, the [784,256] product took ~25% longer). Each output is
 * summed over k in order, in float32, as XNNPACK's loop does.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { F32X4_LANES, I32, V128, instantiate, op } from './wasm-module.ts';

/** Row and column block of the kernel: M must be a multiple of ROWS, N of COLS. */
export const ROWS = 4;
export const COLS = 8;

/** Floats of scratch per row of K the product needs: one panel of B. */
export const PANEL_FLOATS = COLS;

/**
 * a, b, c, scratch (heap offsets; scratch holds K·PANEL_FLOATS floats), M,
 * N, K, then A's strides in bytes between rows (i) and between columns (k):
 * K·4 and 4 for A as stored, 4 and M·4 for a stored Aᵀ. B is [K,N]
 * row-major, or [N,K] for the transposed-B product.
 */
type GemmArgs = [number, number, number, number, number, number, number, number, number];
export type Gemm = (...args: GemmArgs) => void;

// Parameters, then locals.
const [A, B, C, SCRATCH, M, N, K, A_ROW, A_COL] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
const [I, J, KK, PA0, PA1, PA2, PA3, PB, PC, ROW_BYTES, SOURCE, TARGET, PANEL_END, K_BYTES] = [
  9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
];
const ACC = 23; // eight accumulators: row r, half h at ACC + 2r + h
const [B0, B1, SPLAT] = [31, 32, 33];
const PANEL_ROW_BYTES = PANEL_FLOATS * 4;

const get = op.localGet;
const set = op.localSet;
const addTo = (local: number, stride: number) => [...get(local), ...get(stride), ...op.i32Add, ...set(local)];
const addConst = (local: number, bytes: number) => [...get(local), ...op.i32Const(bytes), ...op.i32Add, ...set(local)];
const { add: f32x4Add, mul: f32x4Mul } = F32X4_LANES;

/** acc[r] += splat(A[row r, k]) · B[k, j..j+8] */
const multiplyRow = (r: number) => [
  ...get(PA0 + r),
  ...op.f32Load(),
  ...op.f32x4Splat,
  ...set(SPLAT),
  ...get(ACC + 2 * r),
  ...get(SPLAT),
  ...get(B0),
  ...f32x4Mul,
  ...f32x4Add,
  ...set(ACC + 2 * r),
  ...get(ACC + 2 * r + 1),
  ...get(SPLAT),
  ...get(B1),
  ...f32x4Mul,
  ...f32x4Add,
  ...set(ACC + 2 * r + 1),
];

/** Columns j..j+8 of B, row after row, into the scratch panel. */
const copyPanel = (transposedB: boolean) => [
  // Where column j starts: B + j·4 in a [K,N] B, B + j·K·4 in an [N,K] one (J holds j·4).
  ...get(B),
  ...get(J),
  ...(transposedB ? [...get(K), ...op.i32Mul] : []),
  ...op.i32Add,
  ...set(SOURCE),
  ...get(SCRATCH),
  ...set(TARGET),
  ...get(SCRATCH),
  ...get(K),
  ...op.i32Const(PANEL_ROW_BYTES),
  ...op.i32Mul,
  ...op.i32Add,
  ...set(PANEL_END),
  ...op.loopWhileBelow(
    TARGET,
    PANEL_END,
    PANEL_ROW_BYTES,
    transposedB
      ? [
          // Element k of stored rows j..j+8, each K·4 bytes after the last.
          ...Array.from({ length: PANEL_FLOATS }, (_, c) => [
            ...get(TARGET),
            ...get(SOURCE),
            ...get(K_BYTES),
            ...op.i32Const(c),
            ...op.i32Mul,
            ...op.i32Add,
            ...op.f32Load(),
            ...op.f32Store(4 * c),
          ]).flat(),
          ...addConst(SOURCE, 4),
        ]
      : [
          ...get(TARGET),
          ...get(SOURCE),
          ...op.v128Load(),
          ...op.v128Store(),
          ...get(TARGET),
          ...get(SOURCE),
          ...op.v128Load(16),
          ...op.v128Store(16),
          ...addTo(SOURCE, ROW_BYTES),
        ],
  ),
];

const block = [
  // Row pointers into A for rows i..i+3.
  ...get(A),
  ...get(I),
  ...get(A_ROW),
  ...op.i32Mul,
  ...op.i32Add,
  ...set(PA0),
  ...get(PA0),
  ...get(A_ROW),
  ...op.i32Add,
  ...set(PA1),
  ...get(PA1),
  ...get(A_ROW),
  ...op.i32Add,
  ...set(PA2),
  ...get(PA2),
  ...get(A_ROW),
  ...op.i32Add,
  ...set(PA3),
  ...get(SCRATCH),
  ...set(PB),
  ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap((n) => [...op.v128Zero, ...set(ACC + n)]),
  ...op.i32Const(0),
  ...set(KK),
  ...op.loopWhileBelow(KK, K, 1, [
    ...get(PB),
    ...op.v128Load(),
    ...set(B0),
    ...get(PB),
    ...op.v128Load(16),
    ...set(B1),
    ...[0, 1, 2, 3].flatMap(multiplyRow),
    ...[PA0, PA1, PA2, PA3].flatMap((pointer) => addTo(pointer, A_COL)),
    ...addConst(PB, PANEL_ROW_BYTES),
  ]),
  // Store the block: row r at C + (i + r)·N·4 + j.
  ...get(C),
  ...get(I),
  ...get(ROW_BYTES),
  ...op.i32Mul,
  ...op.i32Add,
  ...get(J),
  ...op.i32Add,
  ...set(PC),
  ...[0, 1, 2, 3].flatMap((r) => [
    ...get(PC),
    ...get(ACC + 2 * r),
    ...op.v128Store(),
    ...get(PC),
    ...get(ACC + 2 * r + 1),
    ...op.v128Store(16),
    ...addTo(PC, ROW_BYTES),
  ]),
];

/** The compiled products per backend instance (bound to its memory): B as stored, and B transposed. */
const compiled = new WeakMap<BackendWasm, [Gemm, Gemm]>();

export function gemmFor(backend: BackendWasm, transposedB: boolean): Gemm {
  let pair = compiled.get(backend);
  if (pair === undefined) {
    pair = [build(backend, false), build(backend, true)];
    compiled.set(backend, pair);
  }
  return pair[transposedB ? 1 : 0];
}

function build(backend: BackendWasm, transposedB: boolean): Gemm {
  return instantiate<GemmArgs>(backend, {
    params: [I32, I32, I32, I32, I32, I32, I32, I32, I32],
    locals: [...new Array<typeof I32>(14).fill(I32), ...new Array<typeof V128>(11).fill(V128)],
    body: [
      ...get(N),
      ...op.i32Const(2),
      ...op.i32Shl,
      ...set(ROW_BYTES),
      ...get(K),
      ...op.i32Const(2),
      ...op.i32Shl,
      ...set(K_BYTES),
      ...op.loopWhileBelow(J, ROW_BYTES, COLS * 4, [
        ...copyPanel(transposedB),
        ...op.i32Const(0),
        ...set(I),
        ...op.loopWhileBelow(I, M, ROWS, block),
      ]),
    ],
  });
}
