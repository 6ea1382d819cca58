// How far a job is, from its events, as a percentage and a sentence.
import { JobState, type JobEvent } from "./gen/inpaint/v1/gateway_pb";

/**
 * Follows a job's events. Sampling events carry only their own region's
 * step (crops sample at once), so the regions' counts are remembered from
 * the inpainting events and each region's latest step fraction is kept.
 */
export class JobProgress {
  private done = 0;
  private total = 0;
  private readonly steps = new Map<number, number>();

  /** Percent done and a sentence after event `e`. */
  update(e: JobEvent): { percent: number; text: string } {
    if (e.regionsTotal > 0) {
      this.done = e.regionsDone;
      this.total = e.regionsTotal;
    }
    if (e.stage === "sampling" && e.steps > 0) {
      this.steps.set(e.region, e.step / e.steps);
    }
    return { percent: this.percent(e), text: this.sentence(e) };
  }

  private repainted(): number {
    // Finished regions count whole; those still sampling by their steps.
    let sampling = 0;
    for (const fraction of this.steps.values()) if (fraction < 1) sampling += fraction;
    return Math.min(this.done + sampling, Math.max(this.total, 1));
  }

  private percent(e: JobEvent): number {
    switch (e.state) {
      case JobState.SUCCEEDED:
        return 100;
      case JobState.QUEUED:
        return 0;
    }
    switch (e.stage) {
      case "segmenting":
        return 5;
      case "masks_ready":
        return 10;
      case "inpainting":
      case "sampling":
        return 10 + (80 * this.repainted()) / Math.max(this.total, 1);
      case "compositing":
        return 95;
      default:
        return 0;
    }
  }

  private sentence(e: JobEvent): string {
    switch (e.state) {
      case JobState.QUEUED:
        return "queued";
      case JobState.SUCCEEDED:
        return "done";
      case JobState.FAILED:
        return `failed: ${e.error}`;
      case JobState.CANCELLED:
        return "cancelled";
    }
    if (e.stage === "sampling" && e.steps > 0) {
      return `sampling region ${e.region + 1} of ${this.total}: step ${e.step} of ${e.steps}`;
    }
    if (e.stage === "inpainting") {
      return `inpainting: ${this.done} of ${this.total} regions`;
    }
    return e.stage.replace("_", " ");
  }
}
