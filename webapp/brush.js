() => {
  // Drag painting on the frame viewer (#viewer). A stroke's points, in the frame's own
  // pixels, go to the hidden #stroke textbox when the button is released; its input event
  // has the server paint them (webapp/session.py, Session.paint). While dragging, the path
  // is drawn on a canvas laid over the frame, so the user sees the stroke until the server's
  // new mask has loaded. Listeners sit on the document: Gradio re-creates the <img>.
  let points = null;
  let image = null;
  let canvas = null;
  let sent = 0;
  const strokes = [];  // drawn canvases waiting for the server's mask

  const pixel = (event) => {
    const box = image.getBoundingClientRect();
    const clamp = (v, size) => Math.min(size - 1, Math.max(0, Math.floor(v)));
    return [
      clamp(((event.clientX - box.left) * image.naturalWidth) / box.width, image.naturalWidth),
      clamp(((event.clientY - box.top) * image.naturalHeight) / box.height, image.naturalHeight),
    ];
  };

  const brushWidth = () => {
    const radius = Number(document.querySelector("#radius input[type=number]")?.value || 8);
    return (2 * radius * image.getBoundingClientRect().width) / image.naturalWidth;
  };

  const drawTo = (event) => {
    const box = image.getBoundingClientRect();
    const context = canvas.getContext("2d");
    context.lineTo(event.clientX - box.left, event.clientY - box.top);
    context.stroke();
  };

  document.addEventListener("dragstart", (event) => {
    if (event.target.closest && event.target.closest("#viewer")) event.preventDefault();
  });

  document.addEventListener("pointerdown", (event) => {
    const target = event.target.closest ? event.target.closest("#viewer img") : null;
    if (!target || event.button !== 0 || !target.naturalWidth) return;
    event.preventDefault();
    image = target;
    points = [pixel(event)];
    const box = image.getBoundingClientRect();
    canvas = document.createElement("canvas");
    canvas.width = box.width;
    canvas.height = box.height;
    Object.assign(canvas.style, {
      position: "fixed", left: `${box.left}px`, top: `${box.top}px`, pointerEvents: "none", zIndex: 1000,
    });
    document.body.appendChild(canvas);
    const context = canvas.getContext("2d");
    Object.assign(context, { lineWidth: brushWidth(), lineCap: "round", lineJoin: "round" });
    context.strokeStyle = "rgba(255, 255, 255, 0.6)";
    context.beginPath();
    context.moveTo(event.clientX - box.left, event.clientY - box.top);
    drawTo(event);
  });

  document.addEventListener("pointermove", (event) => {
    if (!points) return;
    const [x, y] = pixel(event);
    const [lastX, lastY] = points[points.length - 1];
    if (x !== lastX || y !== lastY) points.push([x, y]);
    drawTo(event);
  });

  document.addEventListener("pointerup", () => {
    if (!points) return;
    const box = document.querySelector("#stroke textarea, #stroke input");
    sent += 1;  // a repeated click sends a different text
    box.value = JSON.stringify({ stroke: sent, points });
    box.dispatchEvent(new Event("input", { bubbles: true }));
    points = null;
    const drawn = canvas;
    strokes.push(drawn);
    setTimeout(() => drawn.remove(), 5000);  // in case no new frame image comes
  });

  // the server's new mask has arrived: the drawn strokes go
  document.addEventListener("load", (event) => {
    if (!points && event.target.closest && event.target.closest("#viewer")) {
      strokes.splice(0).forEach((drawn) => drawn.remove());
    }
  }, true);
}
