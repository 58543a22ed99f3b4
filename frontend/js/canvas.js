// Sizing a chart's canvas to its box at the screen's pixel density.

/** Fit `canvas` to its parent's box (at least minWidth x minHeight CSS pixels); the 2D context, in CSS pixels. */
export function fitCanvas(canvas, minWidth, minHeight) {
  const box = canvas.parentElement.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const width = Math.max(minWidth, Math.floor(box.width));
  const height = Math.max(minHeight, Math.floor(box.height));
  if (canvas.width !== width * dpr || canvas.height !== height * dpr) {
    canvas.width = width * dpr;
    canvas.height = height * dpr;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, width, height };
}
