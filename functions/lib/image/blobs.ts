/**
 * Strong ink as connected blobs, and which blobs make which digit. A single
 * digit's blobs give its box (mnist-transform.ts); a written number's give
 * its parts (segment.ts). Both read the same grouping, so the `marks` digit
 * mode reports for an upload ("this looks like two digits") are the parts
 * number mode would read in it (countMarks leaves out a stroke broken off
 * beside its digit), up to the working size and ink level each mode reads
 * the image at.
 *
 * Handwriting is not one blob per digit: a 4, 5 or 7 is often two strokes,
 * a fast stroke breaks, a pen leaves dots, and neighbours touch. Blobs that
 * share most of their columns are one digit; blobs tiny against the line's
 * digits are dust; a blob too wide for one digit is cut where it has least
 * ink. Every rule is relative to the image's own digits, never to pixels,
 * so it holds at any working size.
 */

/** One value per pixel, row-major. */
export interface Gray {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Inclusive pixel bounds. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** The 8-connected blobs of pixels at or over a level, and the horizontal runs they are made of. */
export interface Blobs {
  boxes: Box[];
  /** Pixels in each blob. */
  areas: number[];
  runRow: Int32Array;
  /** First column of each run, and one past its last. */
  runStart: Int32Array;
  runEnd: Int32Array;
  /** Which blob each run belongs to. */
  runBlob: Int32Array;
}

/** One digit: the strong ink of `blobs` between columns `from` (inclusive) and `to` (exclusive), and its box. */
export interface DigitPart {
  blobs: number[];
  from: number;
  to: number;
  box: Box;
}

/** Blobs smaller than this share of the largest are dust, whatever else is on the page. */
export const SPECK_SHARE = 0.05;
/** Two groups whose column spans overlap by this share of the narrower one are strokes of one digit. */
const SAME_DIGIT_OVERLAP = 0.5;
/**
 * More blobs of comparable size than this is noise or texture, not writing:
 * each stands for itself, unmerged and unsorted (left to right no longer
 * matters: no number has that many digits), which keeps a hostile image's cost
 * linear (merging passes over a hundred thousand blobs took a quarter of a
 * second) and its count far over any number's.
 */
const MAX_GROUPED_BLOBS = 4096;
/** Groups one above the other (sharing at most STACKED_ROWS of the shorter's rows) need share only this of their columns. */
const STACKED_OVERLAP = 0.2;
const STACKED_ROWS = 0.2;
/** A group whose longest side is under this share of the line's digit height is a dot, not a digit. */
const DOT_SHARE = 0.3;
/**
 * A group less tall than this share of the line is a stroke that came
 * apart from its digit (the bar of a 5 or 7 drawn separately, a broken
 * stroke), not a digit of its own.
 */
const FRAGMENT_SHARE = 0.4;
/** How far, in line heights, a fragment may be from the digit it joins; farther, it is dropped. */
const FRAGMENT_REACH = 0.25;
/**
 * A group wider than this many line heights is touching digits: MNIST's
 * digits are 0.75 as wide as tall (median), and 99% of them under 1.43.
 */
const TOUCHING_WIDTH = 1.5;
/** The width a digit is expected to take, in line heights, when a touching run is cut into digits. */
const DIGIT_WIDTH = 0.75;
/** A cut is searched this share of a digit's expected width either side of where equal widths would put it. */
const CUT_WINDOW = 0.35;

/**
 * Blobs are found as horizontal runs joined to the runs they touch in the
 * row above (union-find), which costs one comparison per background pixel.
 */
export function findBlobs({ data, width, height }: Gray, level: number): Blobs {
  const runStart: number[] = [];
  const runEnd: number[] = [];
  const runRow: number[] = [];
  const parent: number[] = [];
  const find = (run: number): number => {
    while (parent[run] !== run) {
      parent[run] = parent[parent[run]!]!;
      run = parent[run]!;
    }
    return run;
  };
  let previousRow = 0;
  for (let y = 0; y < height; y++) {
    const line = y * width;
    const thisRow = runStart.length;
    let above = previousRow;
    for (let x = 0; x < width; x++) {
      if (data[line + x]! < level) continue;
      const start = x;
      while (x < width && data[line + x]! >= level) x++;
      const run = runStart.length;
      runStart.push(start);
      runEnd.push(x);
      runRow.push(y);
      parent.push(run);
      // Runs above that end before this one's left diagonal cannot touch it or any later run.
      while (above < thisRow && runEnd[above]! < start) above++;
      for (let p = above; p < thisRow && runStart[p]! <= x; p++) {
        const a = find(p);
        const b = find(run);
        parent[Math.max(a, b)] = Math.min(a, b);
      }
    }
    previousRow = thisRow;
  }
  const runBlob = new Int32Array(runStart.length);
  const blobOfRoot = new Map<number, number>();
  const boxes: Box[] = [];
  const areas: number[] = [];
  for (let run = 0; run < runStart.length; run++) {
    const root = find(run);
    let blob = blobOfRoot.get(root);
    const box = { x0: runStart[run]!, x1: runEnd[run]! - 1, y0: runRow[run]!, y1: runRow[run]! };
    if (blob === undefined) {
      blob = boxes.length;
      blobOfRoot.set(root, blob);
      boxes.push(box);
      areas.push(0);
    } else {
      unite(boxes[blob]!, box);
    }
    areas[blob]! += runEnd[run]! - runStart[run]!;
    runBlob[run] = blob;
  }
  return {
    boxes,
    areas,
    runRow: Int32Array.from(runRow),
    runStart: Int32Array.from(runStart),
    runEnd: Int32Array.from(runEnd),
    runBlob,
  };
}

/** Widens `a` to cover `b`, and returns it. */
export function unite(a: Box, b: Box): Box {
  a.x0 = Math.min(a.x0, b.x0);
  a.y0 = Math.min(a.y0, b.y0);
  a.x1 = Math.max(a.x1, b.x1);
  a.y1 = Math.max(a.y1, b.y1);
  return a;
}

/** The blobs that are not dust: at least SPECK_SHARE of the largest. */
export function significantBlobs({ areas }: Blobs): number[] {
  let largest = 0;
  for (const area of areas) largest = Math.max(largest, area);
  const kept: number[] = [];
  for (let blob = 0; blob < areas.length; blob++) if (areas[blob]! >= largest * SPECK_SHARE) kept.push(blob);
  return kept;
}

interface Group {
  blobs: number[];
  box: Box;
}

const widthOf = (box: Box) => box.x1 - box.x0 + 1;
const heightOf = (box: Box) => box.y1 - box.y0 + 1;

/** The larger middle value: with two groups, the larger, so one dot cannot halve the line's height. */
function upperMedian(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

/** Shared rows of two boxes as a share of the shorter one's height, 0–1. */
function rowOverlap(a: Box, b: Box): number {
  const shared = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0) + 1;
  return shared <= 0 ? 0 : shared / Math.min(heightOf(a), heightOf(b));
}

/**
 * How surely two groups are strokes of one digit, 0–1: the share of the
 * narrower one's columns they share; counted in full when one sits above
 * the other (the loops of a broken 8, a 5's detached bar), since digits on
 * a line stand side by side.
 */
function sameDigit(a: Box, b: Box): number {
  const columns = columnOverlap(a, b);
  return columns >= STACKED_OVERLAP && rowOverlap(a, b) <= STACKED_ROWS ? 1 : columns;
}

/** How much of the narrower group's column span the other covers, 0–1. */
function columnOverlap(a: Box, b: Box): number {
  const shared = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0) + 1;
  return shared <= 0 ? 0 : shared / Math.min(widthOf(a), widthOf(b));
}

/**
 * The digits the blobs make, left to right: strokes sharing their columns
 * merged, dots dropped, runs of touching digits cut. Empty when there are no
 * blobs.
 */
export function groupDigits(blobs: Blobs): DigitPart[] {
  const significant = significantBlobs(blobs);
  if (significant.length > MAX_GROUPED_BLOBS) {
    return significant.map((blob) => {
      const box = { ...blobs.boxes[blob]! };
      return { blobs: [blob], from: box.x0, to: box.x1 + 1, box };
    });
  }
  const order = significant.sort((a, b) => blobs.boxes[a]!.x0 - blobs.boxes[b]!.x0);
  const groups = mergeStrokes(order.map((blob) => ({ blobs: [blob], box: { ...blobs.boxes[blob]! } })));
  if (groups.length === 0) return [];
  const joined = joinFragments(groups, upperMedian(groups.map((group) => heightOf(group.box))));
  // Measured again without the fragments, which would pull it down.
  const lineHeight = upperMedian(joined.map((group) => heightOf(group.box)));
  const parts: DigitPart[] = [];
  for (const group of joined) {
    if (Math.max(widthOf(group.box), heightOf(group.box)) < DOT_SHARE * lineHeight) continue;
    parts.push(...cutTouching(blobs, group, Math.max(lineHeight, heightOf(group.box))));
  }
  return parts;
}

/**
 * A part less tall than this share of the tallest is not a mark of its own:
 * a stroke that broke off its digit (a 2's long tail cut off as a sliver)
 * or a blot beside it.
 */
const MARK_HEIGHT_SHARE = 0.5;
/**
 * Parts closer than this share of the tallest one's height are one mark: a
 * stroke broken beside its digit. Measured on 10,000 MNIST training digits,
 * the 90 that group into two parts have them under 0.2 of its height apart
 * (all but 2 under 0.1), and 400 pairs of digits side by side (the bench's
 * non-digits) at least 0.36.
 */
const MARK_GAP_SHARE = 0.2;

/**
 * How many separate marks digit mode reports for `parts` (groupDigits's):
 * those at least half as tall as the tallest, neighbours that nearly touch
 * counted as one unless they were cut from one run of touching digits.
 * Number mode reads every part; only a single digit's upload asks whether it
 * holds more than one, and a broken stroke would otherwise read as two marks
 * there.
 */
export function countMarks(parts: readonly DigitPart[]): number {
  const tallest = parts.reduce((most, part) => Math.max(most, heightOf(part.box)), 0);
  const marks = parts.filter((part) => heightOf(part.box) >= MARK_HEIGHT_SHARE * tallest);
  let count = Math.min(1, marks.length);
  for (let k = 1; k < marks.length; k++) {
    const [a, b] = [marks[k - 1]!, marks[k]!];
    // cutTouching gives the parts of one touching run the same blobs.
    if (a.blobs === b.blobs || boxGap(a.box, b.box) >= MARK_GAP_SHARE * tallest) count++;
  }
  return count;
}

/** The gap between two boxes: the larger of their horizontal and vertical distances, negative when they overlap. */
function boxGap(a: Box, b: Box): number {
  return Math.max(columnGap(a, b), Math.max(a.y0, b.y0) - Math.min(a.y1, b.y1) - 1);
}

/** Horizontal distance between two boxes; negative when their column spans overlap. */
function columnGap(a: Box, b: Box): number {
  return Math.max(a.x0, b.x0) - Math.min(a.x1, b.x1) - 1;
}

/**
 * Fragments (groups much less tall than the line, but no dots) joined to the
 * nearest digit beside them, when one is within FRAGMENT_REACH; the rest
 * stay as they are.
 */
function joinFragments(groups: Group[], lineHeight: number): Group[] {
  const isFragment = (group: Group) =>
    heightOf(group.box) < FRAGMENT_SHARE * lineHeight &&
    Math.max(widthOf(group.box), heightOf(group.box)) >= DOT_SHARE * lineHeight;
  const digits = groups.filter((group) => !isFragment(group));
  const left: Group[] = [];
  for (const fragment of groups.filter(isFragment)) {
    let nearest: Group | undefined;
    let nearestGap = FRAGMENT_REACH * lineHeight;
    for (const digit of digits) {
      const gap = columnGap(digit.box, fragment.box);
      if (gap <= nearestGap) {
        nearest = digit;
        nearestGap = gap;
      }
    }
    if (nearest === undefined) {
      left.push(fragment);
    } else {
      nearest.blobs.push(...fragment.blobs);
      unite(nearest.box, fragment.box);
    }
  }
  return [...digits, ...left].sort((a, b) => a.box.x0 - b.box.x0);
}

/**
 * Groups (sorted by left edge) merged while one shares most of its columns
 * with a neighbour. Comparing each with the two groups before it covers a
 * stroke that starts right of the next digit's left edge; passes repeat
 * because a merge widens a group.
 */
function mergeStrokes(sorted: Group[]): Group[] {
  let groups = sorted;
  for (let changed = true; changed; ) {
    changed = false;
    const merged: Group[] = [];
    for (const group of groups) {
      let best: Group | undefined;
      let bestOverlap = SAME_DIGIT_OVERLAP;
      for (const candidate of merged.slice(-2)) {
        const overlap = sameDigit(candidate.box, group.box);
        if (overlap >= bestOverlap) {
          best = candidate;
          bestOverlap = overlap;
        }
      }
      if (best === undefined) {
        merged.push(group);
      } else {
        best.blobs.push(...group.blobs);
        unite(best.box, group.box);
        changed = true;
      }
    }
    groups = merged.sort((a, b) => a.box.x0 - b.box.x0);
  }
  return groups;
}

/** The runs of the given blobs, as [row, start, end) triples, clipped to columns [from, to). */
function* runsOf(blobs: Blobs, members: readonly number[], from: number, to: number) {
  const wanted = new Set(members);
  for (let run = 0; run < blobs.runBlob.length; run++) {
    if (!wanted.has(blobs.runBlob[run]!)) continue;
    const start = Math.max(from, blobs.runStart[run]!);
    const end = Math.min(to, blobs.runEnd[run]!);
    if (start < end) yield [blobs.runRow[run]!, start, end] as const;
  }
}

/**
 * A group as one digit, or, when it is too wide for one at `height` (the
 * line's, or its own when taller), as the digits it holds: as many as its width makes at DIGIT_WIDTH each, cut at the column
 * with least ink near each equal-width boundary.
 */
function cutTouching(blobs: Blobs, group: Group, height: number): DigitPart[] {
  const { box } = group;
  const width = widthOf(box);
  const count = width > TOUCHING_WIDTH * height ? Math.max(2, Math.round(width / (DIGIT_WIDTH * height))) : 1;
  const cuts = [box.x0];
  if (count > 1) {
    const ink = new Uint32Array(width);
    for (const [, start, end] of runsOf(blobs, group.blobs, box.x0, box.x1 + 1)) {
      for (let x = start; x < end; x++) ink[x - box.x0]!++;
    }
    const window = Math.max(1, Math.round((CUT_WINDOW * width) / count));
    for (let k = 1; k < count; k++) {
      const target = Math.round((k * width) / count);
      let best = target;
      for (let x = Math.max(1, target - window); x <= Math.min(width - 1, target + window); x++) {
        const better = ink[x]! < ink[best]! || (ink[x] === ink[best] && Math.abs(x - target) < Math.abs(best - target));
        if (better) best = x;
      }
      cuts.push(box.x0 + Math.max(best, cuts[k - 1]! - box.x0 + 1));
    }
  }
  cuts.push(box.x1 + 1);
  const parts: DigitPart[] = [];
  for (let k = 0; k < count; k++) {
    const [from, to] = [cuts[k]!, cuts[k + 1]!];
    if (count === 1) {
      parts.push({ blobs: group.blobs, from, to, box: { ...box } });
      continue;
    }
    let tight: Box | undefined;
    for (const [row, start, end] of runsOf(blobs, group.blobs, from, to)) {
      const run = { x0: start, x1: end - 1, y0: row, y1: row };
      tight = tight === undefined ? run : unite(tight, run);
    }
    if (tight !== undefined) parts.push({ blobs: group.blobs, from, to, box: tight });
  }
  return parts;
}
