// How full the ring buffer got, per sampling interval of `pageref top`. The
// live source reads the fill just before each drain, when it is highest
// (records gather for DRAIN_INTERVAL_MS between drains, longer when a drain
// runs out of its budget), and the view takes the highest once an interval.
// The fill at the moment the view samples would mostly show what came since
// the last drain; the peak says how close the ring came to dropping records.

export class RingFillPeak {
  private peak = 0;
  private recorded = false;

  /** A fill, 0 to 1, read before a drain. */
  record(fill: number): void {
    if (!this.recorded || fill > this.peak) this.peak = fill;
    this.recorded = true;
  }

  /** The highest fill recorded since the previous call, then starts over; null when no drain ran meanwhile. */
  take(): number | null {
    const peak = this.recorded ? this.peak : null;
    this.peak = 0;
    this.recorded = false;
    return peak;
  }
}
