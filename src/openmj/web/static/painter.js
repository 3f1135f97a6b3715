// The Vary (Region) painter, brush or lasso: a canvas over the chosen image, at the image's own
// pixel size, on which the user marks the region to redraw. The mask sent is white (redraw) on
// black (keep).

export class Painter {
  // tool: a <select> with "brush" (paint strokes) or "lasso" (draw an outline, filled on release)
  constructor(canvas, image, brush, tool) {
    this.canvas = canvas;
    this.image = image;
    this.brush = brush;
    this.tool = tool;
    this.painted = false;
    this.last = null;
    this.outline = null;
    const ctx = () => canvas.getContext("2d");
    const at = (e) => {
      const r = canvas.getBoundingClientRect();
      return [((e.clientX - r.left) / r.width) * canvas.width, ((e.clientY - r.top) / r.height) * canvas.height];
    };
    // the brush is sized in screen pixels, whatever the image's resolution
    const scale = () => canvas.width / canvas.getBoundingClientRect().width;
    const stroke = (p) => {
      const c = ctx();
      const width = Number(brush.value) * scale();
      c.strokeStyle = c.fillStyle = "#fff";
      c.lineWidth = width;
      c.lineCap = c.lineJoin = "round";
      c.beginPath();
      if (this.last) { c.moveTo(...this.last); c.lineTo(...p); c.stroke(); }
      c.beginPath();
      c.arc(p[0], p[1], width / 2, 0, Math.PI * 2);
      c.fill();
      this.last = p;
      this.painted = true;
    };
    const lasso = (close) => {
      const c = ctx();
      c.putImageData(this.outline.before, 0, 0); // the outline so far is a preview, not the mask
      c.beginPath();
      this.outline.points.forEach((p, i) => (i ? c.lineTo(...p) : c.moveTo(...p)));
      c.strokeStyle = c.fillStyle = "#fff";
      if (close && this.outline.points.length > 2) { c.closePath(); c.fill(); this.painted = true; }
      else { c.lineWidth = 2 * scale(); c.stroke(); }
    };
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.last = null;
      if (this.tool.value === "lasso") {
        this.outline = { before: ctx().getImageData(0, 0, canvas.width, canvas.height), points: [at(e)] };
      } else stroke(at(e));
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!e.buttons) return;
      if (this.outline) { this.outline.points.push(at(e)); lasso(false); } else stroke(at(e));
    });
    canvas.addEventListener("pointerup", () => {
      if (this.outline) { lasso(true); this.outline = null; }
      this.last = null;
    });
  }

  async load(url) {
    this.image.src = url;
    await this.image.decode();
    this.canvas.width = this.image.naturalWidth;
    this.canvas.height = this.image.naturalHeight;
    this.clear();
  }

  clear() {
    this.canvas.getContext("2d").clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.painted = false;
  }

  // the mask as base64 PNG (no data: prefix), the image's size
  maskBase64() {
    const out = document.createElement("canvas");
    out.width = this.canvas.width;
    out.height = this.canvas.height;
    const c = out.getContext("2d");
    c.fillStyle = "#000";
    c.fillRect(0, 0, out.width, out.height);
    c.drawImage(this.canvas, 0, 0);
    return out.toDataURL("image/png").split(",", 2)[1];
  }
}
