/**
 * The web page in real headless Chromium against the real service: a trained
 * model in an embedded S3, the same handlers, routing and HTTP adapter as
 * `npm start`. The test draws with the mouse and a finger, uploads and drops
 * files, answers whether the model was right, reads numbers as well as
 * digits, and reads what the page shows.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Jimp } from 'jimp';
import { chromium, type Browser, type BrowserContextOptions, type Page, type Response } from 'playwright-core';
import { feedbackKey } from '#lib/live/records';
import { NO_MODEL_MESSAGE } from '#lib/model-cache';
import { tokenBucket } from '#lib/rate-limit';
import { repoRoot, tempDir, testMnist } from './support/env.ts';
import { startService, storeTrainedModel, type TestService } from './support/service.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(repoRoot, 'test', 'artifacts');
const PAD_SIDE = 280;
/** The number pad: 2.5 digit pads wide, as high. */
const NUMBER_PAD_WIDTH = 700;
const REPORT = '<!doctype html><title>evaluation report</title><h1>evaluation report</h1>';
const DESKTOP = { viewport: { width: 1200, height: 900 } } satisfies BrowserContextOptions;
const PHONE = {
  viewport: { width: 375, height: 740 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
} satisfies BrowserContextOptions;

type Point = [x: number, y: number];
type Stroke = Point[];

/** Shapes in pad pixels (0–280), drawn the way people draw them. */
const SHAPES: Record<'one' | 'seven' | 'zero', { digit: number; strokes: Stroke[] }> = {
  one: {
    digit: 1,
    strokes: [
      [
        [146, 45],
        [134, 235],
      ],
    ],
  },
  seven: {
    digit: 7,
    strokes: [
      [
        [75, 60],
        [205, 60],
        [120, 235],
      ],
    ],
  },
  zero: {
    digit: 0,
    strokes: [
      Array.from(
        { length: 41 },
        (_, i): Point => [140 + 62 * Math.sin((i / 40) * 2 * Math.PI), 140 - 92 * Math.cos((i / 40) * 2 * Math.PI)],
      ),
    ],
  },
};

/** A "1" and a "7" side by side with a clear gap, in pad pixels of the number pad (0–700 × 0–280). */
const ONE_SEVEN: Stroke[] = [
  [
    [126, 45],
    [114, 235],
  ],
  [
    [300, 60],
    [430, 60],
    [345, 235],
  ],
];
/** The same two, squeezed into the digit pad (0–280): two separate marks, not one digit. */
const ONE_SEVEN_SMALL: Stroke[] = [
  [
    [56, 50],
    [46, 230],
  ],
  [
    [130, 60],
    [250, 60],
    [175, 230],
  ],
];

/** A test digit scaled up to `side`×`side`, dark ink on white, encoded as `mime`. */
async function renderDigit(
  digit: Uint8Array,
  side: number,
  mime: 'image/png' | 'image/jpeg' | 'image/bmp',
): Promise<Buffer> {
  const image = new Jimp({ width: side, height: side, color: 0xffffffff });
  const data = image.bitmap.data;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const v = 255 - digit[Math.floor((y * 28) / side) * 28 + Math.floor((x * 28) / side)]!;
      data.set([v, v, v, 255], (y * side + x) * 4);
    }
  }
  return image.getBuffer(mime);
}

/** Test digits side by side, each scaled to `side`, `gap` pixels apart with a margin around: a written number, as a PNG. */
async function renderNumber(digits: Uint8Array[], side: number, gap: number): Promise<Buffer> {
  const width = digits.length * side + (digits.length + 1) * gap;
  const image = new Jimp({ width, height: side + 2 * gap, color: 0xffffffff });
  const data = image.bitmap.data;
  digits.forEach((digit, n) => {
    const left = gap + n * (side + gap);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const v = 255 - digit[Math.floor((y * 28) / side) * 28 + Math.floor((x * 28) / side)]!;
        data.set([v, v, v, 255], ((y + gap) * width + left + x) * 4);
      }
    }
  });
  return image.getBuffer('image/png');
}

/** What the page's POST /predict got back, as far as these tests read it. */
interface Answer {
  digit: number;
  predictionId: string;
}

/** A digit-mode answer with its verdict; `digit` is null when there was no ink. */
interface Verdict {
  digit: number | null;
  confidence: number | null;
  isDigit: boolean;
  reason?: string;
  message?: string;
  predictionId?: string;
}

/** A number-mode answer. */
interface NumberAnswer {
  number: string;
  confidence: number;
  digits: { digit: number; confidence: number; box: [number, number, number, number]; predictionId: string }[];
}

interface OpenPage {
  page: Page;
  /** Console errors and uncaught exceptions. */
  errors: string[];
  requests: string[];
}

describe('web page', {
  skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: install Debian's chromium to run the browser tests`,
}, () => {
  let browser: Browser;
  let service: TestService;
  const closers: (() => Promise<unknown>)[] = [];

  before(async () => {
    [browser, service] = await Promise.all([
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      }),
      startService(),
    ]);
    await service.store.attach(service.version!, 'report.html', REPORT, 'text/html');
    await mkdir(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    for (const close of closers.reverse()) await close();
    await browser?.close();
    await service?.close();
  });

  /** A new page at `url`; `prepare` runs before it loads (to route a request, say). */
  async function open(
    url: string,
    options: BrowserContextOptions = DESKTOP,
    prepare?: (page: Page) => Promise<unknown>,
  ): Promise<OpenPage> {
    const context = await browser.newContext(options);
    closers.push(() => context.close());
    const page = await context.newPage();
    await prepare?.(page);
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(String(error)));
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(url);
    return { page, errors, requests };
  }

  /** Where pad pixel `[x, y]` is on the screen, at whatever size the pad is (digit or number) and is shown. */
  async function padToScreen(page: Page): Promise<(point: Point) => Point> {
    const box = await page.locator('#pad').boundingBox();
    assert.ok(box, 'the pad is visible');
    const { width, height } = await page.locator('#pad').evaluate((c: HTMLCanvasElement) => ({
      width: c.width,
      height: c.height,
    }));
    return ([x, y]) => [box.x + (x * box.width) / width, box.y + (y * box.height) / height];
  }

  async function draw(page: Page, strokes: Stroke[]): Promise<void> {
    const at = await padToScreen(page);
    for (const stroke of strokes) {
      await page.mouse.move(...at(stroke[0]!));
      await page.mouse.down();
      for (const point of stroke.slice(1)) await page.mouse.move(...at(point), { steps: 6 });
      await page.mouse.up();
    }
  }

  /** A finger stroke through the Chrome DevTools protocol: Playwright's own touch API only taps. */
  async function drawWithFinger(page: Page, stroke: Stroke): Promise<void> {
    const at = await padToScreen(page);
    const cdp = await page.context().newCDPSession(page);
    const touch = (point: Point) => {
      const [x, y] = at(point);
      return [{ x, y }];
    };
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: touch(stroke[0]!) });
    for (let i = 1; i < stroke.length; i++) {
      const [[x0, y0], [x1, y1]] = [stroke[i - 1]!, stroke[i]!];
      for (let s = 1; s <= 10; s++) {
        await cdp.send('Input.dispatchTouchEvent', {
          type: 'touchMove',
          touchPoints: touch([x0 + ((x1 - x0) * s) / 10, y0 + ((y1 - y0) * s) / 10]),
        });
      }
    }
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    await cdp.detach();
  }

  /** Runs `action`, waits for the /predict answer it causes to be shown, and returns it with the page's result state. */
  async function predictVia(
    page: Page,
    action: () => Promise<unknown>,
  ): Promise<{ state: string | null; response: Response }> {
    const origin = new URL(page.url()).origin;
    const [response] = await Promise.all([page.waitForResponse(`${origin}/predict`, { timeout: 15_000 }), action()]);
    await page.waitForSelector('#result[aria-busy="false"]');
    return { state: await page.locator('#result').getAttribute('data-state'), response };
  }

  /** The answer the page shows once `action` has led to a prediction; fails with the page's error text if it did not. */
  async function answerAfter(page: Page, action: () => Promise<unknown>): Promise<Answer> {
    const { state, response } = await predictVia(page, action);
    assert.equal(state, 'done', `the prediction failed: ${await page.locator('#error').textContent()}`);
    return (await response.json()) as Answer;
  }

  /** The digit the page shows once `action` has led to a prediction. */
  async function digitAfter(page: Page, action: () => Promise<unknown>): Promise<number> {
    await answerAfter(page, action);
    return Number(await page.locator('#digit').textContent());
  }

  /** Runs `action` and returns the body the page sent to POST /feedback and the status it got back. */
  async function feedbackVia(page: Page, action: () => Promise<unknown>): Promise<{ sent: unknown; status: number }> {
    const [response] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/feedback' && r.request().method() === 'POST'),
      action(),
    ]);
    return { sent: response.request().postDataJSON(), status: response.status() };
  }

  /** The feedback line, once it has come to start with `start`. */
  async function feedbackSays(page: Page, start: string): Promise<string> {
    const line = await page.waitForFunction((text) => {
      const said = document.getElementById('feedback-status')?.textContent ?? '';
      return said.startsWith(text) && said;
    }, start);
    return (await line.jsonValue()) as string;
  }

  /** The feedback buttons shown as pressed, by their text. */
  const pressed = (page: Page) => page.locator('#feedback [aria-pressed="true"]').allTextContents();

  /** The feedback record the service stored in the bucket for `predictionId`. */
  async function storedFeedback(predictionId: string): Promise<Record<string, unknown> | undefined> {
    const stored = await service.bucket.objects.get(feedbackKey(predictionId));
    return stored && JSON.parse(stored.body.toString('utf8'));
  }

  /** How many of the #seen canvas's 784 pixels hold ink. */
  async function seenInk(page: Page): Promise<number> {
    return page.evaluate(() => {
      const canvas = document.getElementById('seen') as HTMLCanvasElement;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      let inked = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i]! > 64 && data[i + 3]! > 0) inked++;
      return inked;
    });
  }

  async function assertBarsShow(page: Page, digit: number): Promise<void> {
    const bars = page.locator('#bars > [data-digit]');
    assert.equal(await bars.count(), 10);
    assert.deepEqual(await bars.evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.digit)), [
      '0',
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
      '7',
      '8',
      '9',
    ]);
    assert.deepEqual(
      await page
        .locator('#bars > .win')
        .evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.digit)),
      [String(digit)],
    );
  }

  it('loads offline-clean and shows the serving model, its accuracy, a 10×10 confusion matrix and a link to its report', async () => {
    const { page, errors, requests } = await open(service.url);
    await page.waitForFunction(
      (version) => document.getElementById('model-version')?.textContent === version,
      service.version,
    );
    const model = (await (await fetch(`${service.url}/model`)).json()) as {
      test: { accuracy: number; count: number; confusion: number[][] };
    };

    assert.match(
      (await page.locator('#model-accuracy').textContent()) ?? '',
      new RegExp(`^${(model.test.accuracy * 100).toFixed(2)}%`),
    );
    const cells = await page
      .locator('#confusion tbody tr')
      .evaluateAll((rows) => rows.map((row) => Array.from(row.querySelectorAll('td'), (td) => Number(td.textContent))));
    assert.deepEqual(cells, model.test.confusion);
    assert.match(
      (await page.locator('#confusion tbody tr:nth-child(4) td:nth-of-type(4)').getAttribute('title')) ?? '',
      /read correctly/,
    );
    assert.equal(await page.locator('#per-class tbody tr').count(), 10);
    assert.equal(await page.locator('#error').isHidden(), true);
    assert.equal(await page.locator('#live').isHidden(), true, 'no live accuracy while GET /model has none');

    const report = page.locator('a[href="model/report"]');
    await report.waitFor({ state: 'visible' });
    const [tab] = await Promise.all([page.waitForEvent('popup'), report.click()]);
    await tab.waitForLoadState();
    assert.equal(tab.url(), `${service.url}/model/report`);
    assert.equal(await tab.locator('h1').textContent(), 'evaluation report');

    const origin = new URL(service.url).origin;
    assert.deepEqual(
      requests.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:')),
      [],
    );
    assert.deepEqual(errors, []);
  });

  it('reads a 1, a 7 and a 0 drawn with the mouse, predicting on its own after a stroke or on Predict', async () => {
    const { page, errors } = await open(service.url);
    await page.waitForSelector('#confusion tbody tr');

    assert.equal(
      await digitAfter(page, () => draw(page, SHAPES.one.strokes)),
      1,
      'predicted on its own after the stroke',
    );

    for (const shape of [SHAPES.seven, SHAPES.zero]) {
      await page.click('#clear');
      assert.equal(await page.locator('#result').getAttribute('data-state'), 'idle');
      assert.equal(await seenInk(page), 0);
      await draw(page, shape.strokes);
      assert.equal(await digitAfter(page, () => page.click('#predict')), shape.digit);
      await assertBarsShow(page, shape.digit);
      assert.ok((await seenInk(page)) > 30, 'the 28×28 input is drawn');
      assert.match((await page.locator('#confidence').textContent()) ?? '', /^\d+\.\d% confident$/);
    }
    await page.screenshot({ path: path.join(ARTIFACTS, 'web.png'), fullPage: true });
    assert.deepEqual(errors, []);
  });

  it('reads a digit drawn with a finger on a phone-sized screen without scrolling sideways', async () => {
    const { page, errors } = await open(service.url, PHONE);
    await page.waitForSelector('#confusion tbody tr');
    assert.ok(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      'no horizontal overflow',
    );

    assert.equal(await digitAfter(page, () => drawWithFinger(page, SHAPES.seven.strokes[0]!)), 7);
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-phone.png'), fullPage: true });
    assert.deepEqual(errors, []);
  });

  it('reads uploaded MNIST test digits as PNG, JPEG and an over-1-MB BMP the page shrinks first', async () => {
    const { images, labels } = (await testMnist()).test;
    const dir = await tempDir('digitnet-web-');
    const { page, errors } = await open(service.url);
    await page.waitForSelector('#confusion tbody tr');

    const digitOf = (index: number) => images.subarray(index * 784, (index + 1) * 784);
    /**
     * The first test digit of `label` that the service reads right when sent a PNG of it directly: this suite checks
     * the page's handling of files, and a 2-epoch MLP misreads a few percent of digits whatever the page does.
     */
    async function readableDigit(label: number, side: number): Promise<number> {
      for (let index = 0; index < labels.length; index++) {
        if (labels[index] !== label) continue;
        const png = await renderDigit(digitOf(index), side, 'image/png');
        const response = await fetch(`${service.url}/predict`, {
          method: 'POST',
          body: JSON.stringify({ image: png.toString('base64') }),
        });
        if (((await response.json()) as { digit?: number }).digit === label) return index;
      }
      throw new Error(`the model reads no ${label} right`);
    }

    // A 600×600 BMP is over 1 MB, more than the service accepts.
    const uploads = [
      { label: 2, side: 200, mime: 'image/png', name: 'two.png' },
      { label: 4, side: 240, mime: 'image/jpeg', name: 'four.jpg' },
      { label: 5, side: 600, mime: 'image/bmp', name: 'five.bmp' },
    ] as const;
    for (const upload of uploads) {
      const file = path.join(dir, upload.name);
      const bytes = await renderDigit(
        digitOf(await readableDigit(upload.label, upload.side)),
        upload.side,
        upload.mime,
      );
      if (upload.mime === 'image/bmp')
        assert.ok(bytes.length > 1024 * 1024, `the BMP is over 1 MB (${bytes.length} bytes)`);
      await writeFile(file, bytes);

      assert.equal(await digitAfter(page, () => page.setInputFiles('#file', file)), upload.label, upload.name);
      assert.match((await page.locator('#source').textContent()) ?? '', new RegExp(upload.name));
      await assertBarsShow(page, upload.label);
      assert.ok((await seenInk(page)) > 30);
    }
    assert.deepEqual(errors, []);
  });

  it('says so when an uploaded file is not an image', async () => {
    const { page } = await open(service.url);
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('seven') });
    await page.waitForSelector('#error:not([hidden])');
    assert.match((await page.locator('#error').textContent()) ?? '', /notes\.txt is not an image/);
  });

  it('shows the service’s own message while no model is serving, and recovers once one is promoted', async () => {
    const empty = await startService({ promote: false, refreshSeconds: 0 });
    closers.push(() => empty.close());
    const { page } = await open(empty.url);
    const message = NO_MODEL_MESSAGE.replaceAll('`', '');
    await page.waitForFunction((text) => document.getElementById('error')?.textContent?.includes(text), message);

    await draw(page, SHAPES.one.strokes);
    assert.equal((await predictVia(page, () => page.click('#predict'))).state, 'error');
    assert.equal(await page.locator('#error').isVisible(), true);
    assert.ok((await page.locator('#error').textContent())?.includes(message));
    assert.equal(await page.locator('#digit').textContent(), '–');

    const version = await storeTrainedModel(empty.store);
    await empty.store.promote(version);
    assert.equal(await digitAfter(page, () => page.click('#predict')), 1);
    assert.equal(await page.locator('#error').isHidden(), true);
    await page.waitForFunction((v) => document.getElementById('model-version')?.textContent === v, version);
    await page.locator('#no-report').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#report').isHidden(), true);
  });

  it('after a drawn answer, Right and then Wrong → 3 send the user’s word for that prediction; the bucket keeps the last', async () => {
    const { page, errors } = await open(service.url);
    await page.waitForSelector('#confusion tbody tr');
    assert.equal(await page.locator('#feedback').isHidden(), true, 'nothing to rate before an answer');
    const answer = await answerAfter(page, () => draw(page, SHAPES.seven.strokes));
    assert.equal(await page.locator('#feedback').isVisible(), true);
    assert.deepEqual(await pressed(page), []);
    assert.equal(await page.locator('#labels').isHidden(), true);

    assert.deepEqual(await feedbackVia(page, () => page.click('#right')), {
      sent: { predictionId: answer.predictionId, correct: true },
      status: 200,
    });
    await feedbackSays(page, `Thanks — recorded as ${answer.digit}, as the model said.`);
    assert.deepEqual(await pressed(page), ['Right']);
    assert.equal((await storedFeedback(answer.predictionId))?.correct, true);

    await page.click('#wrong');
    await page.locator('#labels').waitFor();
    assert.equal(await page.locator('#wrong').getAttribute('aria-expanded'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), '0', 'focus moves to the digits');
    assert.deepEqual(await feedbackVia(page, () => page.click('#labels [data-label="3"]')), {
      sent: { predictionId: answer.predictionId, label: 3 },
      status: 200,
    });
    await feedbackSays(page, 'Thanks — recorded as 3.');
    assert.deepEqual(await pressed(page), ['3']);
    const stored = await storedFeedback(answer.predictionId);
    assert.equal(stored?.label, 3);
    assert.equal(stored && 'correct' in stored, false, 'the correction replaced the confirmation');

    const next = await answerAfter(page, () => page.click('#predict'));
    assert.notEqual(next.predictionId, answer.predictionId);
    assert.deepEqual(await pressed(page), [], 'a new answer starts unrated');
    assert.equal(await page.locator('#labels').isHidden(), true);
    assert.equal(await page.locator('#feedback-status').textContent(), '');
    assert.deepEqual(errors, []);
  });

  it('takes the verdict from the keyboard: N opens the digits, 5 picks one, Enter says the answer was right', async () => {
    const { page, errors } = await open(service.url);
    await page.waitForSelector('#confusion tbody tr');
    const answer = await answerAfter(page, () => draw(page, SHAPES.one.strokes));
    assert.equal(await page.locator('#right').getAttribute('aria-keyshortcuts'), 'Y Enter');
    assert.equal(await page.locator('#wrong').getAttribute('aria-keyshortcuts'), 'N');
    assert.match((await page.locator('#feedback-keys').textContent()) ?? '', /Y or Enter right, N wrong, then 0–9/);

    await page.keyboard.press('n');
    await page.locator('#labels').waitFor();
    assert.deepEqual(await feedbackVia(page, () => page.keyboard.press('5')), {
      sent: { predictionId: answer.predictionId, label: 5 },
      status: 200,
    });
    await feedbackSays(page, 'Thanks — recorded as 5.');
    assert.deepEqual(await feedbackVia(page, () => page.keyboard.press('Enter')), {
      sent: { predictionId: answer.predictionId, correct: true },
      status: 200,
    });
    await feedbackSays(page, `Thanks — recorded as ${answer.digit}, as the model said.`);
    assert.equal(await page.locator('#labels').isHidden(), true);
    assert.deepEqual(errors, []);
  });

  it('asks about a dropped image too, and Y confirms it', async () => {
    const { images } = (await testMnist()).test;
    const png = await renderDigit(images.subarray(0, 784), 112, 'image/png');
    const { page, errors } = await open(service.url);
    await page.waitForSelector('#confusion tbody tr');
    const dataTransfer = await page.evaluateHandle(
      (bytes) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
        return transfer;
      },
      [...png],
    );

    const answer = await answerAfter(page, () => page.dispatchEvent('#drop', 'drop', { dataTransfer }));
    assert.match((await page.locator('#source').textContent()) ?? '', /upload: dropped\.png/);
    assert.equal(await page.locator('#feedback').isVisible(), true);
    assert.deepEqual(await feedbackVia(page, () => page.keyboard.press('y')), {
      sent: { predictionId: answer.predictionId, correct: true },
      status: 200,
    });
    await feedbackSays(page, `Thanks — recorded as ${answer.digit}, as the model said.`);
    assert.deepEqual(errors, []);
  });

  it('says so briefly when feedback is refused (429) or cannot be sent, and drawing and predicting carry on', async () => {
    // The route's real throttle: one answer now, the next not for minutes.
    const throttled = await startService({ throttleFeedback: tokenBucket({ ratePerSecond: 0.01, burst: 1 }) });
    closers.push(() => throttled.close());
    const { page, errors } = await open(throttled.url);
    await page.waitForSelector('#confusion tbody tr');
    await answerAfter(page, () => draw(page, SHAPES.one.strokes));

    assert.equal((await feedbackVia(page, () => page.click('#right'))).status, 200);
    await feedbackSays(page, 'Thanks');
    await page.click('#wrong');
    assert.equal((await feedbackVia(page, () => page.click('#labels [data-label="4"]'))).status, 429);
    assert.match(await feedbackSays(page, 'Not recorded: too many requests'), /retry in \d+ s/);
    assert.deepEqual(await pressed(page), ['Right'], 'the last recorded verdict still shows');
    assert.equal(await page.locator('#error').isHidden(), true, 'not the page-wide error box');

    await page.context().setOffline(true);
    await page.click('#labels [data-label="4"]');
    await feedbackSays(page, 'Not recorded: Could not reach the digitnet service');
    await page.context().setOffline(false);

    await page.click('#clear');
    assert.equal(await page.locator('#feedback').isHidden(), true);
    await answerAfter(page, () => draw(page, SHAPES.seven.strokes));
    assert.equal(await page.locator('#feedback-status').textContent(), '');
    assert.deepEqual(await pressed(page), []);
    assert.equal(await page.locator('#right').isEnabled(), true);
    // The browser logs each failed request itself; nothing else may go wrong.
    assert.deepEqual(
      errors.filter((error) => !error.startsWith('Failed to load resource')),
      [],
    );
  });

  it('shows live accuracy with its interval and count when GET /model has users’ verdicts, none before any', async () => {
    // Wilson 95% for 11 right of 12.
    const live = {
      predictions: 340,
      feedback: 12,
      correct: 11,
      corrected: 1,
      accuracy: 11 / 12,
      low: 0.6461,
      high: 0.9851,
      updatedAt: '2026-12-04T10:00:00.000Z',
    };
    // Only GET /model is stubbed, and only its `live` part: the server side of it is being built elsewhere.
    const withLive = (summary: typeof live) => (page: Page) =>
      page.route('**/model', async (route) => {
        if (route.request().method() !== 'GET') return route.fallback();
        const response = await route.fetch();
        return route.fulfill({ response, json: { ...(await response.json()), live: summary } });
      });

    const { page, errors } = await open(service.url, DESKTOP, withLive(live));
    await page.locator('#live').waitFor();
    assert.equal(await page.locator('#live-accuracy').textContent(), '92% (65–99%)');
    assert.equal(await page.locator('#live-count').textContent(), 'from 12 of 340 answers confirmed or corrected');
    assert.match(
      (await page.locator('#live-count').getAttribute('title')) ?? '',
      /^11 confirmed right, 1 corrected; updated /,
    );
    assert.match(
      (await page.locator('#live-note').textContent()) ?? '',
      /^95% interval\. Users correct wrong answers more often than they confirm right ones, so this leans low\.$/,
    );
    assert.deepEqual(errors, []);

    const unrated = await open(service.url, DESKTOP, withLive({ ...live, feedback: 0, correct: 0, corrected: 0 }));
    await unrated.page.waitForSelector('#confusion tbody tr');
    assert.equal(await unrated.page.locator('#live').isHidden(), true);
  });
  /** The pad's size in canvas pixels and on the screen. */
  async function padSize(
    page: Page,
  ): Promise<{ width: number; height: number; shown: { width: number; height: number } }> {
    const box = await page.locator('#pad').boundingBox();
    assert.ok(box, 'the pad is visible');
    const size = await page.locator('#pad').evaluate((c: HTMLCanvasElement) => ({ width: c.width, height: c.height }));
    return { ...size, shown: { width: box.width, height: box.height } };
  }

  /** Runs `action` and returns the number-mode answer the page then shows, and the body it sent. */
  async function numberAfter(
    page: Page,
    action: () => Promise<unknown>,
  ): Promise<{ answer: NumberAnswer; sent: unknown }> {
    const { state, response } = await predictVia(page, action);
    assert.equal(state, 'done', `the prediction failed: ${await page.locator('#error').textContent()}`);
    assert.equal(response.status(), 200, `POST /predict answered ${response.status()}: ${await response.text()}`);
    return { answer: (await response.json()) as NumberAnswer, sent: response.request().postDataJSON() };
  }

  /** Each box drawn over the pad, in screen pixels. */
  const shownBoxes = (page: Page) =>
    page.locator('#pad-boxes .box').evaluateAll((boxes) =>
      boxes.map((box) => {
        const r = box.getBoundingClientRect();
        return { x: r.x, y: r.y, width: r.width, height: r.height, digit: box.textContent };
      }),
    );

  /** Every POST /feedback body the page sends from now on. */
  function feedbackBodies(page: Page): unknown[] {
    const sent: unknown[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/feedback' && request.method() === 'POST')
        sent.push(request.postDataJSON());
    });
    return sent;
  }

  it('says plainly that a blank upload has nothing to read: no digit, no question; as a number, that none was found', async () => {
    const dir = await tempDir('digitnet-web-');
    const blank = path.join(dir, 'blank.png');
    await writeFile(blank, await new Jimp({ width: 200, height: 200, color: 0xffffffff }).getBuffer('image/png'));
    const { page, errors } = await open(service.url);
    await page.waitForSelector('#confusion tbody tr');

    const { state, response } = await predictVia(page, () => page.setInputFiles('#file', blank));
    assert.equal(state, 'done');
    const answer = (await response.json()) as Verdict;
    assert.deepEqual([answer.digit, answer.isDigit, answer.reason], [null, false, 'no_ink']);
    assert.equal(await page.locator('#verdict').isVisible(), true);
    assert.equal(await page.locator('#verdict-message').textContent(), `Nothing to read: ${answer.message}.`);
    assert.equal(await page.locator('#digit').textContent(), '–', 'no digit at all');
    assert.equal(await page.locator('#confidence').textContent(), 'No digit');
    assert.equal(await page.locator('#bars > .win').count(), 0);
    assert.equal(await page.locator('#feedback').isHidden(), true, 'nothing was predicted, so nothing to rate');
    assert.equal(await page.locator('#as-number').isHidden(), true);
    assert.equal(await page.locator('#error').isHidden(), true, 'an answer, not an error');

    // The switch reads the same upload again, as a number.
    const again = await predictVia(page, () => page.click('label:has(#mode-number)'));
    assert.equal(again.response.status(), 400);
    const { error } = (await again.response.json()) as { error: { code: string; message: string } };
    assert.equal(error.code, 'no_number_found');
    const sent = again.response.request().postDataJSON() as { mode: string };
    assert.deepEqual([Object.keys(sent).sort(), sent.mode], [['image', 'mode'], 'number']);
    assert.equal(await page.locator('#verdict').isVisible(), true);
    const said = (await page.locator('#verdict-message').textContent()) ?? '';
    assert.equal(said.toLowerCase(), `${error.message.replace(/\.$/, '')}.`.toLowerCase(), 'the service’s message');
    assert.equal(await page.locator('#number').textContent(), '–');
    assert.equal(await page.locator('#error').isHidden(), true, 'a plain message, not the error box');
    assert.equal(await page.locator('#feedback').isHidden(), true);
    assert.deepEqual(
      errors.filter((e) => !e.startsWith('Failed to load resource')),
      [],
    );
  });

  it('says two marks drawn as one digit are not a digit, still shows the digit smaller, and reads them as a number in one click', async () => {
    const { page, errors } = await open(service.url);
    await page.waitForSelector('#confusion tbody tr');
    await draw(page, ONE_SEVEN_SMALL);
    const { state, response } = await predictVia(page, () => page.click('#predict'));
    assert.equal(state, 'done');
    const answer = (await response.json()) as Verdict;
    assert.deepEqual([answer.isDigit, answer.reason], [false, 'several_marks']);

    assert.equal(
      await page.locator('#verdict-message').textContent(),
      `That does not look like a digit: ${answer.message}${answer.message?.endsWith('.') ? '' : '.'}`,
    );
    assert.equal(await page.locator('#digit').textContent(), String(answer.digit), 'the digit, for those who want it');
    assert.equal(
      await page.locator('#confidence').textContent(),
      `${(answer.confidence! * 100).toFixed(1)}% confident`,
    );
    const fontSize = (selector: string) =>
      page.locator(selector).evaluate((e) => Number.parseFloat(getComputedStyle(e).fontSize));
    assert.ok((await fontSize('#digit')) < (await fontSize('#verdict-message')) * 3, 'the digit is shown smaller');
    await assertBarsShow(page, answer.digit!);
    assert.equal(await page.locator('#feedback').isVisible(), true, 'the digit can still be rated');

    const { answer: read, sent } = await numberAfter(page, () => page.click('#as-number'));
    assert.equal((sent as { mode: string }).mode, 'number');
    assert.equal(await page.locator('#mode-number').isChecked(), true);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'mode-number', 'the focus stays on the switch');
    assert.equal((await padSize(page)).width, NUMBER_PAD_WIDTH, 'the pad is the number pad');
    assert.equal(read.number, '17', 'the drawing was kept and read again');
    assert.equal(await page.locator('#number').textContent(), '17');
    assert.equal(await page.locator('#verdict').isHidden(), true);
    assert.equal(await page.locator('#pad-boxes .box').count(), 2);
    assert.deepEqual(errors, []);
  });

  it('switches between a digit and a number from the keyboard: the number pad is 2.5 times as wide at the same height', async () => {
    const { page, errors, requests } = await open(service.url);
    await page.waitForSelector('#confusion tbody tr');
    const digitPad = await padSize(page);
    assert.deepEqual([digitPad.width, digitPad.height], [PAD_SIDE, PAD_SIDE]);
    assert.equal(await page.locator('#mode-digit').isChecked(), true);
    assert.equal(await page.locator('#input-title').textContent(), 'Your digit');

    await page.focus('#mode-digit');
    await page.keyboard.press('ArrowRight');
    await page.waitForSelector('main[data-mode="number"]');
    assert.equal(await page.locator('#mode-number').isChecked(), true);
    assert.equal(await page.locator('#input-title').textContent(), 'Your number');
    assert.match((await page.locator('#pad').getAttribute('aria-label')) ?? '', /write a number/);
    const numberPad = await padSize(page);
    assert.deepEqual([numberPad.width, numberPad.height], [NUMBER_PAD_WIDTH, PAD_SIDE]);
    assert.ok(Math.abs(numberPad.shown.height - digitPad.shown.height) <= 1, 'as high as the digit pad');
    assert.ok(Math.abs(numberPad.shown.width / numberPad.shown.height - 2.5) < 0.02, '2.5 times as wide');
    assert.equal(requests.filter((url) => url.endsWith('/predict')).length, 0, 'an empty pad is not sent');

    // A 1 drawn at the left fits the digit pad, so it survives the way back and is read as a digit.
    await draw(page, SHAPES.one.strokes);
    const back = await predictVia(page, async () => {
      await page.focus('#mode-number');
      await page.keyboard.press('ArrowLeft');
    });
    assert.equal(back.state, 'done');
    assert.equal((back.response.request().postDataJSON() as { mode?: string }).mode, undefined, 'read as a digit');
    assert.equal(await page.locator('#mode-digit').isChecked(), true);
    assert.equal(await page.locator('#digit').textContent(), '1');
    assert.deepEqual(errors, []);
  });

  it('reads a 1 and a 7 drawn apart in number mode: the number, and each digit’s box over its strokes', async () => {
    const { page, errors } = await open(service.url);
    await page.waitForSelector('#confusion tbody tr');
    await page.click('label:has(#mode-number)');
    await draw(page, ONE_SEVEN);
    const { answer, sent } = await numberAfter(page, () => page.click('#predict'));
    assert.deepEqual(Object.keys(sent as object).sort(), ['image', 'mode']);
    assert.equal((sent as { mode: string }).mode, 'number');
    assert.equal(answer.number, '17');
    assert.equal(await page.locator('#number').textContent(), '17');
    assert.equal(await page.locator('#confidence').textContent(), `${(answer.confidence * 100).toFixed(1)}% confident`);
    assert.equal(await page.locator('#digit').isHidden(), true);
    assert.deepEqual(
      await page.locator('#parts button').evaluateAll((chips) => chips.map((c) => c.querySelector('.d')?.textContent)),
      ['1', '7'],
    );

    // Each box is where the service says, scaled from the image's pixels to the pad as shown.
    const at = await padToScreen(page);
    const boxes = await shownBoxes(page);
    assert.deepEqual(
      boxes.map((b) => b.digit),
      ['1', '7'],
    );
    answer.digits.forEach(({ box: [x, y, w, h] }, i) => {
      const [left, top] = at([x, y]);
      const [right, bottom] = at([x + w, y + h]);
      const shown = boxes[i]!;
      for (const [got, want] of [
        [shown.x, left],
        [shown.y, top],
        [shown.x + shown.width, right],
        [shown.y + shown.height, bottom],
      ] as const) {
        assert.ok(Math.abs(got - want) <= 2, `box ${i} edge at ${got}, the answer's at ${want}`);
      }
    });
    // And around the strokes drawn: the middle of each digit's stroke lies inside its box.
    ONE_SEVEN.forEach((stroke, i) => {
      const [x, y] = at(stroke[1]!);
      const b = boxes[i]!;
      assert.ok(x > b.x && x < b.x + b.width && y > b.y && y < b.y + b.height, `digit ${i}'s stroke is in its box`);
    });
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-number.png'), fullPage: true });

    // A new stroke makes the boxes stale: they go.
    await draw(page, [[[600, 140]]]);
    assert.equal(await page.locator('#pad-boxes .box').count(), 0);
    assert.deepEqual(errors, []);
  });

  it('takes feedback per digit of a number: a digit’s own button, N for the least sure one, and Right for all', async () => {
    const { page, errors } = await open(service.url);
    await page.waitForSelector('#confusion tbody tr');
    await page.click('label:has(#mode-number)');
    await draw(page, ONE_SEVEN);
    const { answer } = await numberAfter(page, () => page.click('#predict'));
    assert.equal(answer.digits.length, 2);
    const [first, second] = answer.digits as [NumberAnswer['digits'][0], NumberAnswer['digits'][0]];
    assert.notEqual(first.predictionId, second.predictionId);

    await page.click('#parts button[data-index="1"]');
    await page.locator('#labels').waitFor();
    assert.equal(
      await page.locator('#labels-question').textContent(),
      `Digit 2 of 2 was read as ${second.digit}. Which digit is it?`,
    );
    assert.equal(await page.locator('#pad-boxes .box.selected').textContent(), String(second.digit));
    assert.deepEqual(await feedbackVia(page, () => page.click('#labels [data-label="4"]')), {
      sent: { predictionId: second.predictionId, label: 4 },
      status: 200,
    });
    await feedbackSays(page, `Thanks — digit 2 recorded as 4, so the number is ${first.digit}4.`);
    assert.equal((await storedFeedback(second.predictionId))?.label, 4);
    assert.equal(await storedFeedback(first.predictionId), undefined, 'the other digit is untouched');

    const sent = feedbackBodies(page);
    await page.click('#right');
    await feedbackSays(page, `Thanks — recorded as ${answer.number}, as the model said.`);
    assert.deepEqual(sent, [
      { predictionId: first.predictionId, correct: true },
      { predictionId: second.predictionId, correct: true },
    ]);
    assert.equal((await storedFeedback(first.predictionId))?.correct, true);
    assert.equal((await storedFeedback(second.predictionId))?.correct, true);
    assert.deepEqual(await pressed(page), ['Right']);

    // N opens the keypad on the digit the model was least sure of; a digit key corrects that one.
    const leastSure = first.confidence < second.confidence ? first : second;
    await page.keyboard.press('n');
    await page.locator('#labels').waitFor();
    assert.deepEqual(await feedbackVia(page, () => page.keyboard.press('9')), {
      sent: { predictionId: leastSure.predictionId, label: 9 },
      status: 200,
    });
    assert.equal((await storedFeedback(leastSure.predictionId))?.label, 9);
    assert.deepEqual(errors, []);
  });

  it('reads an uploaded number: each digit’s box over a copy of the image, scaled to the size it is shown at', async () => {
    const { images, labels } = (await testMnist()).test;
    const firstOf = (label: number) => images.subarray(labels.indexOf(label) * 784, (labels.indexOf(label) + 1) * 784);
    const dir = await tempDir('digitnet-web-');
    const file = path.join(dir, 'number.png');
    const side = 112;
    await writeFile(file, await renderNumber([firstOf(1), firstOf(2), firstOf(0)], side, 40));
    const { page, errors } = await open(service.url);
    await page.waitForSelector('#confusion tbody tr');
    await page.click('label:has(#mode-number)');

    const { answer } = await numberAfter(page, () => page.setInputFiles('#file', file));
    assert.equal(answer.digits.length, 3, 'three digits apart are three parts');
    assert.equal(await page.locator('#number').textContent(), answer.number);
    assert.match((await page.locator('#source').textContent()) ?? '', /upload: number\.png/);
    assert.equal(await page.locator('#pad-boxes .box').count(), 0, 'the pad holds drawings only');
    await page.locator('#number-view').waitFor();
    const image = await page.locator('#number-image').evaluate((img: HTMLImageElement) => {
      const r = img.getBoundingClientRect();
      const style = getComputedStyle(img);
      const border = Number.parseFloat(style.borderLeftWidth);
      return { x: r.x + border, y: r.y + border, width: r.width - 2 * border, height: r.height - 2 * border };
    });
    const scale = image.width / (3 * side + 4 * 40);
    const boxes = await page.locator('#image-boxes .box').evaluateAll((shown) =>
      shown.map((box) => {
        const r = box.getBoundingClientRect();
        return { x: r.x, y: r.y, width: r.width, height: r.height, digit: box.textContent };
      }),
    );
    assert.deepEqual(
      boxes.map((b) => b.digit),
      answer.digits.map((d) => String(d.digit)),
    );
    answer.digits.forEach(({ box: [x, y, w, h] }, i) => {
      const shown = boxes[i]!;
      assert.ok(Math.abs(shown.x - (image.x + x * scale)) <= 2, `box ${i}'s left edge`);
      assert.ok(Math.abs(shown.y - (image.y + y * scale)) <= 2, `box ${i}'s top edge`);
      assert.ok(Math.abs(shown.width - w * scale) <= 2, `box ${i}'s width`);
      assert.ok(Math.abs(shown.height - h * scale) <= 2, `box ${i}'s height`);
      // And around its own digit's square.
      const centre = x + w / 2;
      assert.ok(centre > 40 + i * (side + 40) && centre < (i + 1) * (side + 40), `box ${i} is on digit ${i}`);
    });
    assert.deepEqual(errors, []);
  });

  it('on a phone, a tap switches to number mode; the wide pad fits the screen and takes a number written with a finger', async () => {
    const { page, errors } = await open(service.url, PHONE);
    await page.waitForSelector('#confusion tbody tr');
    await page.tap('label:has(#mode-number)');
    await page.waitForSelector('main[data-mode="number"]');
    assert.ok(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      'no horizontal overflow',
    );
    const { width, shown } = await padSize(page);
    assert.equal(width, NUMBER_PAD_WIDTH);
    assert.ok(shown.width <= PHONE.viewport.width, 'the pad is scaled to the screen');

    await drawWithFinger(page, ONE_SEVEN[0]!);
    const { answer } = await numberAfter(page, () => drawWithFinger(page, ONE_SEVEN[1]!));
    assert.equal(answer.number, '17');
    assert.equal(await page.locator('#pad-boxes .box').count(), 2);
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-number-phone.png'), fullPage: true });
    assert.deepEqual(errors, []);
  });
});
