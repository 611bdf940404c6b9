// Authenticated media for <img> and downloads: fetched with the token in a header, shown as blob URLs.
//
// `img src` cannot carry an Authorization header, and the token must never go into a URL, so
// each mxc:// URI is fetched once through the Matrix client and kept as an object URL.

const cache = new Map();

/**
 * A blob: URL for an mxc:// URI (cached); with `size`, a thumbnail of about that size.
 * @param {import("./matrix.js").MatrixClient} client
 * @param {string} mxc
 * @param {{size?: number}} [options]
 */
export function mediaUrl(client, mxc, { size } = {}) {
  const key = `${mxc}|${size ?? ""}`;
  let entry = cache.get(key);
  if (!entry) {
    entry = fetchBlob(client, mxc, size).then((blob) => URL.createObjectURL(blob));
    entry.catch(() => cache.delete(key));
    cache.set(key, entry);
  }
  return entry;
}

async function fetchBlob(client, mxc, size) {
  const match = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(String(mxc ?? ""));
  if (!match) throw new Error("not a media URI");
  const [, server, mediaId] = match;
  return client.mediaBlob(server, mediaId, { size });
}

/** Show an mxc:// image in `img` once loaded; on failure the element gets the class `broken`. */
export function loadImage(img, client, mxc, options) {
  img.dataset.mxc = mxc;
  mediaUrl(client, mxc, options).then(
    (url) => {
      if (img.dataset.mxc === mxc) img.src = url;
    },
    () => img.classList.add("broken"),
  );
  return img;
}

/** Save an mxc:// file under `filename` (fetched with the token, then handed to the browser). */
export async function downloadFile(client, mxc, filename) {
  const url = await mediaUrl(client, mxc);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename || "download";
  a.rel = "noopener";
  document.body.append(a);
  a.click();
  a.remove();
}
