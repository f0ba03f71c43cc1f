// Notification clients. Fake credentials planted to test redaction; none of them is real.
const { WebClient } = require("@slack/web-api");

const slack = new WebClient("xoxb-55597971147-104974650752-NhFdnXsiVpzz63FfkCzJr4i0");
const HOOK = "https://hooks.slack.com/services/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";

const maps = {
  apiKey: "AIzaX83RZJzzzzgEOzdmenCkhvMdgaKjIg8xNbe",
  region: "eu",
};

function headers() {
  return { Authorization: "Bearer eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAiMTIzNDU2Nzg5MCIsICJuYW1lIjogIkZha2UgVXNlciIsICJpYXQiOiAxNTE2MjM5MDIyfQ.q4i9DoV8gz4FkQ1okTBGzvAmwufUxbvJDCTbyvHNsG9" };
}

const npmrc = "//registry.npmjs.org/:_authToken=npm_Gb3CXlMaXZjljENUhJduRHHJEYXg4JdpmrcX";
const authToken = `qzjI6GKFSufrdZSlB5er8bOfZqfM2oeq`;

module.exports = { slack, HOOK, maps, headers, npmrc, authToken };
