// The page: open a photo, say what to repaint (brush, points, phrase),
// submit it as a job, watch it, compare and download.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { connect, describe, fieldOf, newKey } from "./api";
import {
  type GetCapabilitiesResponse,
  type InpaintRequestSchema,
  JobState,
} from "./gen/inpaint/v1/gateway_pb";
import { MaskPainter } from "./mask";
import { JobProgress } from "./progress";

type Request = MessageInitShape<typeof InpaintRequestSchema>;
type Mode = "brush" | "points" | "phrase";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return el as T;
};
const input = (id: string) => $<HTMLInputElement>(id);
const select = (id: string) => $<HTMLSelectElement>(id);

/** The control each API field belongs to (its error shows beside it). */
const FIELD_CONTROLS: [RegExp, string][] = [
  [/^image$/, "photo"],
  [/^(mask|target)$/, "mask"],
  [/^prompt(\.|$)/, "points"],
  [/^detect(\.|$)/, "phrase"],
  [/^params\.mask_blur$/, "mask-blur"],
  [/^params\.grow$/, "grow"],
  [/^params\.area$/, "area"],
  [/^params\.work_width$/, "work-width"],
  [/^params\.work_height$/, "work-height"],
  [/^params\.engine$/, "engine"],
  [/^params\.model$/, "model"],
  [/^params\.seed$/, "seed"],
  [/^params\.sd\.prompt$/, "sd-prompt"],
  [/^params\.sd\.negative_prompt$/, "sd-negative"],
  [/^params\.sd\.steps$/, "sd-steps"],
  [/^params\.sd\.cfg_scale$/, "sd-cfg"],
  [/^params\.sd\.sampler$/, "sd-sampler"],
  [/^params\.sd\.denoising_strength$/, "sd-denoise"],
];

interface Photo {
  bytes: Uint8Array;
  name: string;
  url: string;
  width: number;
  height: number;
}

interface Point {
  x: number;
  y: number;
  background: boolean;
}

const client = connect(() => input("api-key").value.trim());
const painter = new MaskPainter($<HTMLCanvasElement>("mask-canvas"));
const overlay = $<HTMLCanvasElement>("overlay-canvas");
let photo: Photo | undefined;
let points: Point[] = [];
let selection: ImageBitmap | undefined;
let capabilities: GetCapabilitiesResponse | undefined;
let running: { id: string; abort: AbortController } | undefined;
let resultUrl: string | undefined;
let maskUrl: string | undefined;

function mode(): Mode {
  return (document.querySelector<HTMLInputElement>("input[name=mode]:checked")?.value ?? "brush") as Mode;
}

function setStatus(text: string, percent?: number): void {
  $("status").textContent = text;
  if (percent !== undefined) $<HTMLProgressElement>("progress").value = percent;
}

function clearErrors(): void {
  for (const el of document.querySelectorAll(".error")) el.textContent = "";
  for (const el of document.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/** Shows `message` beside the control of the field it names, or below the form. */
function showError(message: string): void {
  const named = fieldOf(message);
  const control = named && FIELD_CONTROLS.find(([pattern]) => pattern.test(named.field))?.[1];
  if (named && control) {
    $(`err-${control}`).textContent = `${named.field}: ${named.reason}`;
    document.getElementById(control)?.setAttribute("aria-invalid", "true");
    if (control === "sd-prompt" || control.startsWith("sd-")) $("sd-settings").hidden = false;
  } else {
    $("err-general").textContent = message;
  }
}

// ---- the server's capabilities ----

async function loadCapabilities(): Promise<void> {
  try {
    capabilities = await client.getCapabilities({});
  } catch (err) {
    const { code, message } = describe(err);
    $("server").textContent =
      code === Code.Unauthenticated ? "The gateway asks for an API key (Connection, below)." : `Not connected: ${message}`;
    return;
  }
  const engines = select("engine");
  engines.replaceChildren(
    ...capabilities.engines.map((e) => {
      const o = new Option(e.name, e.name);
      o.title = e.description;
      o.selected = e.name === capabilities!.defaultEngine;
      return o;
    }),
  );
  $("words").replaceChildren(...capabilities.detectWords.map((w) => new Option(w)));
  select("sd-sampler").replaceChildren(...capabilities.samplers.map((s) => new Option(s, s)));
  showModels();
  $("server").textContent = `${capabilities.engines.length} engines, ${capabilities.models.length} models`;
}

/** The model picker lists the chosen engine's models; SD settings show for engine "sd". */
function showModels(): void {
  const engine = select("engine").value;
  const models = capabilities?.models.filter((m) => m.engine === engine) ?? [];
  const picker = select("model");
  picker.replaceChildren(...models.map((m) => new Option(m.name, m.name)));
  picker.hidden = $("model-label").hidden = models.length === 0;
  $("sd-settings").hidden = engine !== "sd";
}

// ---- the photo ----

async function openPhoto(file: File): Promise<void> {
  clearErrors();
  const bytes = new Uint8Array(await file.arrayBuffer());
  let bitmap: ImageBitmap;
  try {
    // Upright as viewers show it, as the server turns it by default.
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    $("err-photo").textContent = `${file.name} is not an image this browser can open`;
    return;
  }
  if (photo) URL.revokeObjectURL(photo.url);
  const { width, height } = bitmap;
  photo = { bytes, name: file.name, url: URL.createObjectURL(file), width, height };
  const canvas = $<HTMLCanvasElement>("photo-canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d")!.drawImage(bitmap, 0, 0);
  bitmap.close();
  painter.reset(width, height);
  overlay.width = width;
  overlay.height = height;
  points = [];
  selection = undefined;
  drawOverlay();
  showEditor();
  $("drop-hint").hidden = true;
  $("canvases").hidden = false;
  setStatus(`${file.name}: ${photo.width}×${photo.height}`, 0);
}

function showEditor(): void {
  $("compare").hidden = true;
  $("compare-controls").hidden = true;
  $("canvases").hidden = !photo;
}

// ---- brush and points ----

function imagePoint(e: PointerEvent | MouseEvent): { x: number; y: number } {
  const r = overlay.getBoundingClientRect();
  return {
    x: Math.round(((e.clientX - r.left) / r.width) * overlay.width),
    y: Math.round(((e.clientY - r.top) / r.height) * overlay.height),
  };
}

function brushSize(): number {
  return Number(input("brush-size").value);
}

overlay.addEventListener("pointerdown", (e) => {
  if (!photo || e.button !== 0) return;
  const p = imagePoint(e);
  if (mode() === "brush") {
    overlay.setPointerCapture(e.pointerId);
    painter.begin(p.x, p.y, brushSize(), input("eraser").checked);
  } else if (mode() === "points") {
    points.push({ ...p, background: e.shiftKey || input("background-points").checked });
    selection = undefined;
    $("preview-status").textContent = `${points.length} point${points.length === 1 ? "" : "s"}`;
    drawOverlay();
  }
});
overlay.addEventListener("pointermove", (e) => {
  if (!painter.painting) return;
  const p = imagePoint(e);
  painter.to(p.x, p.y);
});
for (const end of ["pointerup", "pointercancel"]) {
  overlay.addEventListener(end, () => painter.end());
}

/** Points (green on, red off the object) and the previewed selection. */
function drawOverlay(): void {
  const ctx = overlay.getContext("2d")!;
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  if (mode() === "brush") return;
  if (selection) {
    ctx.globalAlpha = 0.45;
    ctx.drawImage(selection, 0, 0);
    ctx.globalAlpha = 1;
  }
  const radius = Math.max(4, Math.round(Math.max(overlay.width, overlay.height) / 120));
  for (const p of points) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, radius, 0, Math.PI * 2);
    ctx.fillStyle = p.background ? "#e11d48" : "#16a34a";
    ctx.fill();
    ctx.lineWidth = Math.max(1, radius / 3);
    ctx.strokeStyle = "white";
    ctx.stroke();
  }
}

/** The selection's mask tinted for display: 255 → translucent green. */
async function tinted(png: Uint8Array): Promise<ImageBitmap> {
  const bitmap = await createImageBitmap(new Blob([png as BlobPart], { type: "image/png" }));
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d")!;
  ctx.drawImage(bitmap, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < data.data.length; i += 4) {
    const on = data.data[i] >= 128;
    data.data[i] = 34;
    data.data[i + 1] = 197;
    data.data[i + 2] = 94;
    data.data[i + 3] = on ? 255 : 0;
  }
  ctx.putImageData(data, 0, 0);
  return createImageBitmap(canvas);
}

// ---- requests ----

/** What to repaint, as the current mode says; undefined (with an error shown) when not ready. */
async function target(): Promise<Request["target"] | undefined> {
  switch (mode()) {
    case "brush":
      if (painter.isEmpty()) {
        $("err-mask").textContent = "Paint over what to repaint first.";
        return undefined;
      }
      return { case: "mask", value: await painter.png() };
    case "points":
      if (!points.some((p) => !p.background)) {
        $("err-points").textContent = "Click on the object first.";
        return undefined;
      }
      return { case: "prompt", value: { points } };
    case "phrase":
      return { case: "detect", value: { prompt: input("phrase").value } };
  }
}

function number(id: string): number {
  return Number(input(id).value);
}

function params(): NonNullable<Request["params"]> {
  const engine = select("engine").value;
  const p: NonNullable<Request["params"]> = {
    maskBlur: number("mask-blur"),
    grow: number("grow"),
    area: Number(select("area").value),
    // Empty = the server's default (512).
    workWidth: number("work-width"),
    workHeight: number("work-height"),
    engine,
    model: select("model").hidden ? "" : select("model").value,
    seed: BigInt(Math.max(0, Math.trunc(number("seed")))),
  };
  if (engine === "sd") {
    p.sd = {
      prompt: $<HTMLTextAreaElement>("sd-prompt").value,
      negativePrompt: $<HTMLTextAreaElement>("sd-negative").value,
      steps: number("sd-steps"),
      cfgScale: number("sd-cfg"),
      sampler: select("sd-sampler").value,
      denoisingStrength: number("sd-denoise"),
    };
  }
  return p;
}

async function preview(): Promise<void> {
  if (!photo) return;
  clearErrors();
  const t = await target();
  if (!t) return;
  $("preview-status").textContent = "finding…";
  try {
    const answer = await client.previewMask({ request: { image: photo.bytes, target: t } });
    selection = await tinted(answer.mask);
    drawOverlay();
    const found = answer.regions.length;
    $("preview-status").textContent =
      found === 0 ? answer.notes.join("; ") || "nothing found" : `${found} region${found === 1 ? "" : "s"} selected`;
  } catch (err) {
    $("preview-status").textContent = "";
    showError(describe(err).message);
  }
}

async function submit(): Promise<void> {
  if (!photo || running) return;
  clearErrors();
  const t = await target();
  if (!t) return;
  if (maskUrl) URL.revokeObjectURL(maskUrl);
  maskUrl = undefined;
  if (t.case === "mask") {
    maskUrl = URL.createObjectURL(new Blob([t.value as BlobPart], { type: "image/png" }));
    const link = $<HTMLAnchorElement>("download-mask");
    link.href = maskUrl;
    link.download = `${stem(photo.name)}-mask.png`;
    link.hidden = false;
  } else {
    $("download-mask").hidden = true;
  }
  const abort = new AbortController();
  setStatus("submitting…", 0);
  $<HTMLButtonElement>("submit").disabled = true;
  try {
    const job = await client.submitJob({
      request: { image: photo.bytes, target: t, params: params() },
      idempotencyKey: newKey(),
    });
    running = { id: job.id, abort };
    $<HTMLButtonElement>("cancel").disabled = false;
    await follow(job.id, abort.signal);
  } catch (err) {
    if (!abort.signal.aborted) {
      setStatus("refused");
      showError(describe(err).message);
    }
  } finally {
    running = undefined;
    $<HTMLButtonElement>("submit").disabled = false;
    $<HTMLButtonElement>("cancel").disabled = true;
  }
}

/** Follows job `id` to its end, then shows its result or why it failed. */
async function follow(id: string, signal: AbortSignal): Promise<void> {
  const progress = new JobProgress();
  let state = JobState.QUEUED;
  let error = "";
  for await (const event of client.watchJob({ id }, { signal })) {
    const { percent, text } = progress.update(event);
    setStatus(text, percent);
    state = event.state;
    error = event.error;
  }
  if (state === JobState.SUCCEEDED) {
    const result = await client.getResult({ id });
    showResult(result.image, result.mimeType);
    setStatus("done", 100);
  } else if (state === JobState.FAILED) {
    setStatus("failed");
    showError(error);
  }
}

function showResult(image: Uint8Array, mime: string): void {
  if (!photo) return;
  if (resultUrl) URL.revokeObjectURL(resultUrl);
  resultUrl = URL.createObjectURL(new Blob([image as BlobPart], { type: mime || "image/png" }));
  $<HTMLImageElement>("before").src = photo.url;
  $<HTMLImageElement>("after").src = resultUrl;
  $("canvases").hidden = true;
  $("compare").hidden = false;
  $("compare-controls").hidden = false;
  const link = $<HTMLAnchorElement>("download-result");
  link.href = resultUrl;
  link.download = `${stem(photo.name)}-inpainted.${extension(mime)}`;
  link.hidden = false;
}

function stem(name: string): string {
  return name.replace(/\.[^.]*$/, "") || "image";
}

function extension(mime: string): string {
  return { "image/jpeg": "jpg", "image/webp": "webp" }[mime] ?? "png";
}

// ---- wiring ----

function showMode(): void {
  const m = mode();
  $("brush-tools").hidden = m !== "brush";
  $("points-tools").hidden = m !== "points";
  $("phrase-tools").hidden = m !== "phrase";
  $("preview-tools").hidden = m === "brush";
  $("mask-canvas").hidden = m !== "brush";
  overlay.style.cursor = m === "phrase" ? "default" : "crosshair";
  selection = undefined;
  $("preview-status").textContent = "";
  drawOverlay();
}

input("photo-file").addEventListener("change", () => {
  const file = input("photo-file").files?.[0];
  if (file) void openPhoto(file);
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const file = e.dataTransfer?.files[0];
  if (file) void openPhoto(file);
});
for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", showMode);
input("brush-size").addEventListener("input", () => ($("brush-size-value").textContent = input("brush-size").value));
$("undo").addEventListener("click", () => painter.undo());
$("redo").addEventListener("click", () => painter.redo());
$("invert-mask").addEventListener("click", () => painter.invert());
$("clear-mask").addEventListener("click", () => painter.clear());
$("clear-points").addEventListener("click", () => {
  points = [];
  selection = undefined;
  $("preview-status").textContent = "";
  drawOverlay();
});
$("preview").addEventListener("click", () => void preview());
select("engine").addEventListener("change", showModels);
$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  void submit();
});
$("cancel").addEventListener("click", async () => {
  if (!running) return;
  try {
    await client.cancelJob({ id: running.id });
    setStatus("cancelling…");
  } catch (err) {
    showError(describe(err).message);
  }
});
input("compare-slider").addEventListener("input", () => {
  $("after-clip").style.clipPath = `inset(0 0 0 ${input("compare-slider").value}%)`;
});
$("back-to-edit").addEventListener("click", showEditor);
document.addEventListener("keydown", (e) => {
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
  if (typing || mode() !== "brush") return;
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === "z") {
    e.preventDefault();
    if (e.shiftKey) painter.redo();
    else painter.undo();
  } else if ((e.ctrlKey || e.metaKey) && key === "y") {
    e.preventDefault();
    painter.redo();
  } else if (key === "[" || key === "]") {
    const size = input("brush-size");
    size.value = String(brushSize() + (key === "]" ? 5 : -5));
    $("brush-size-value").textContent = size.value;
  }
});

showMode();
void loadCapabilities();
