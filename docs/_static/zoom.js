// Click a gallery figure (or an API entry's figure, or an evidence figure) to see it at its natural size.
document.addEventListener("click", (event) => {
  const overlay = document.querySelector(".zoom-overlay");
  if (overlay) {
    overlay.remove();
    return;
  }
  const img = event.target.closest(
    ".schedule-gallery img, figure.api-gallery-figure img, .zoomable img, img.zoomable"
  );
  if (!img || img.closest("a")) return;
  const big = document.createElement("div");
  big.className = "zoom-overlay";
  const copy = document.createElement("img");
  copy.src = img.currentSrc || img.src;
  copy.alt = img.alt;
  big.appendChild(copy);
  document.body.appendChild(big);
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") document.querySelector(".zoom-overlay")?.remove();
});
