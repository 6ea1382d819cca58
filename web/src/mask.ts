// The mask a person paints, at the photo's own resolution: strokes of
// opaque colour on a transparent canvas, each stroke one undo step.

/** Undo steps kept (each a full-size snapshot). */
const HISTORY = 30;

export class MaskPainter {
  private readonly ctx: CanvasRenderingContext2D;
  private undoStack: ImageData[] = [];
  private redoStack: ImageData[] = [];
  private last: { x: number; y: number } | null = null;

  constructor(private readonly canvas: HTMLCanvasElement, private readonly colour = "#ff2020") {
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    if (!ctx) throw new Error("no 2D canvas");
    this.ctx = ctx;
  }

  /** A new, empty mask of the photo's size. */
  reset(width: number, height: number): void {
    this.canvas.width = width;
    this.canvas.height = height;
    this.undoStack = [];
    this.redoStack = [];
  }

  /** Starts a stroke at (x, y) in image pixels. */
  begin(x: number, y: number, size: number, erase: boolean): void {
    this.remember();
    this.ctx.globalCompositeOperation = erase ? "destination-out" : "source-over";
    this.ctx.strokeStyle = this.colour;
    this.ctx.fillStyle = this.colour;
    this.ctx.lineWidth = size;
    this.ctx.lineCap = "round";
    this.ctx.lineJoin = "round";
    this.ctx.beginPath();
    this.ctx.arc(x, y, size / 2, 0, Math.PI * 2);
    this.ctx.fill();
    this.last = { x, y };
  }

  /** Continues the stroke to (x, y). */
  to(x: number, y: number): void {
    if (!this.last) return;
    this.ctx.beginPath();
    this.ctx.moveTo(this.last.x, this.last.y);
    this.ctx.lineTo(x, y);
    this.ctx.stroke();
    this.last = { x, y };
  }

  end(): void {
    this.last = null;
  }

  get painting(): boolean {
    return this.last !== null;
  }

  undo(): void {
    const previous = this.undoStack.pop();
    if (!previous) return;
    this.redoStack.push(this.snapshot());
    this.ctx.putImageData(previous, 0, 0);
  }

  redo(): void {
    const next = this.redoStack.pop();
    if (!next) return;
    this.undoStack.push(this.snapshot());
    this.ctx.putImageData(next, 0, 0);
  }

  clear(): void {
    this.remember();
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }

  /** Painted becomes unpainted and the reverse. */
  invert(): void {
    this.remember();
    const data = this.snapshot();
    const [r, g, b] = rgb(this.colour);
    for (let i = 0; i < data.data.length; i += 4) {
      data.data[i] = r;
      data.data[i + 1] = g;
      data.data[i + 2] = b;
      data.data[i + 3] = 255 - data.data[i + 3];
    }
    this.ctx.putImageData(data, 0, 0);
  }

  /** Whether any pixel is painted (at least half opaque). */
  isEmpty(): boolean {
    const alpha = this.snapshot().data;
    for (let i = 3; i < alpha.length; i += 4) if (alpha[i] >= 128) return false;
    return true;
  }

  /**
   * The mask as the API reads an upload: an opaque PNG, white where the
   * stroke is at least half opaque, black elsewhere.
   */
  async png(): Promise<Uint8Array> {
    const src = this.snapshot();
    const out = new ImageData(src.width, src.height);
    for (let i = 0; i < src.data.length; i += 4) {
      const v = src.data[i + 3] >= 128 ? 255 : 0;
      out.data[i] = v;
      out.data[i + 1] = v;
      out.data[i + 2] = v;
      out.data[i + 3] = 255;
    }
    const canvas = document.createElement("canvas");
    canvas.width = src.width;
    canvas.height = src.height;
    canvas.getContext("2d")!.putImageData(out, 0, 0);
    const blob = await new Promise<Blob | null>((done) => canvas.toBlob(done, "image/png"));
    if (!blob) throw new Error("cannot encode the mask");
    return new Uint8Array(await blob.arrayBuffer());
  }

  private snapshot(): ImageData {
    return this.ctx.getImageData(0, 0, this.canvas.width, this.canvas.height);
  }

  private remember(): void {
    this.undoStack.push(this.snapshot());
    if (this.undoStack.length > HISTORY) this.undoStack.shift();
    this.redoStack = [];
  }
}

function rgb(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
