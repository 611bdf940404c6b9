// One membership line in a channel's timeline ("Alice joined."), its text from member-notices.js.

import { h } from "../dom.js";
import { icon } from "../icons.js";

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/** The list item for a membership event's notice; the text (with names and reasons) as text. */
export function memberNoticeNode(event, text) {
  const ts = Number(event.origin_server_ts) || 0;
  return h(
    "li",
    {
      class: "message system-notice member-notice",
      "data-testid": "member-notice",
      "data-event-id": event.event_id,
      dataset: { membership: event.content?.membership ?? "" },
    },
    h(
      "span",
      { class: "system-notice-icon", "aria-hidden": "true" },
      icon(event.content?.membership === "join" ? "arrow-right" : "arrow-left", { size: 16 }),
    ),
    h("span", { class: "system-notice-text", "data-testid": "member-notice-text", text }),
    h("time", { class: "timestamp", datetime: new Date(ts).toISOString(), text: timeFormat.format(new Date(ts)) }),
  );
}
