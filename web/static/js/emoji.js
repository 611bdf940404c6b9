// The emoji offered in the picker (views/popups.js pickEmoji) for reactions and messages. They are
// content people send, not controls: this is the one file of the client where emoji characters
// may be written (tests/unit_js/no-emoji.test.mjs); controls draw SVG icons (icons.js).

export const EMOJI = [
  "👍", "👎", "😀", "😂", "🤣", "😊", "😍", "🥰", "😎", "🤔", "😮", "😢", "😭", "😡", "🥳", "😴",
  "🙏", "👏", "🙌", "💪", "👀", "🤝", "✌️", "👋", "❤️", "🧡", "💛", "💚", "💙", "💜", "🔥", "✨",
  "🎉", "🎮", "🎵", "☕", "🍕", "🍻", "🚀", "💯", "✅", "❌", "⚠️", "❓", "💡", "📌", "🐛", "🤖",
];
