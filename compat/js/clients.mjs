// The JavaScript clients of the compatibility suite: `node clients.mjs <client> <feature> <gateway base URL>`.
// Prints one JSON line with what the client returned; any failure exits non-zero with the client's own error.
import Anthropic from "@anthropic-ai/sdk";
import { createOpenAI } from "@ai-sdk/openai";
import { Output, embed, generateText, stepCountIs, streamText, tool } from "ai";
import OpenAI from "openai";
import { z } from "zod";

const [client, feature, base] = process.argv.slice(2);
const PIXEL =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgAAACAAFUok9dAAAAAElFTkSuQmCC";
const incident = z.object({ service: z.string(), severity: z.number().int() });
const weatherParams = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
};

async function openaiJs() {
  const c = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
  const ask = (extra) =>
    c.chat.completions.create({ model: "gpt", messages: [{ role: "user", content: "Say hello" }], ...extra });
  switch (feature) {
    case "plain":
      return { text: (await ask()).choices[0].message.content };
    case "stream": {
      let text = "";
      for await (const chunk of await ask({ stream: true, stream_options: { include_usage: true } })) {
        text += chunk.choices[0]?.delta?.content ?? "";
      }
      return { text };
    }
    case "tools": {
      const r = await ask({ tools: [{ type: "function", function: { name: "get_weather", parameters: weatherParams } }] });
      return { tool: r.choices[0].message.tool_calls[0].function.name };
    }
    case "structured": {
      const schema = { type: "object", properties: { service: { type: "string" }, severity: { type: "integer" } },
        required: ["service", "severity"], additionalProperties: false };
      const r = await ask({ response_format: { type: "json_schema", json_schema: { name: "incident", strict: true, schema } } });
      return { object: JSON.parse(r.choices[0].message.content) };
    }
    case "json-mode":
      return { object: JSON.parse((await ask({ response_format: { type: "json_object" } })).choices[0].message.content) };
    case "image": {
      const content = [
        { type: "text", text: "What is in this image?" },
        { type: "image_url", image_url: { url: `data:image/png;base64,${PIXEL}` } },
      ];
      const r = await c.chat.completions.create({ model: "gpt", messages: [{ role: "user", content }] });
      return { text: r.choices[0].message.content };
    }
    case "responses":
      return { text: (await c.responses.create({ model: "gpt", input: "Say hello" })).output_text };
    case "embeddings": {
      const r = await c.embeddings.create({ model: "embed", input: ["first text"] });
      return { dims: r.data[0].embedding.length };
    }
    case "completions": {
      const whole = await c.completions.create({ model: "gpt", prompt: "Say hello", max_tokens: 50 });
      let streamed = "";
      for await (const chunk of await c.completions.create({ model: "gpt", prompt: "Say hello", stream: true })) {
        streamed += chunk.choices[0]?.text ?? "";
      }
      return { text: whole.choices[0].text, streamed };
    }
  }
  throw new Error(`no ${feature} case for ${client}`);
}

async function aiSdk() {
  const openai = createOpenAI({ baseURL: `${base}/v1`, apiKey: "unused" });
  const chat = openai.chat("gpt");
  switch (feature) {
    case "plain":
      return { text: (await generateText({ model: chat, prompt: "Say hello", maxRetries: 0 })).text };
    case "stream": {
      const r = streamText({ model: chat, prompt: "Say hello", maxRetries: 0 });
      let text = "";
      for await (const piece of r.textStream) text += piece;
      return { text };
    }
    case "tools": {
      const getWeather = tool({
        description: "Current weather for a city",
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => `4 C in ${city}`,
      });
      const r = await generateText({ model: chat, prompt: "Weather in Oslo?", tools: { getWeather },
        stopWhen: stepCountIs(3), maxRetries: 0 });
      return { text: r.text, tool: r.steps[0].toolCalls[0].toolName };
    }
    case "structured": {
      const r = await generateText({ model: chat, prompt: "The checkout is down", output: Output.object({ schema: incident }),
        maxRetries: 0 });
      return { object: r.output };
    }
    case "image": {
      const messages = [{ role: "user", content: [
        { type: "text", text: "What is in this image?" },
        { type: "image", image: Buffer.from(PIXEL, "base64"), mediaType: "image/png" },
      ] }];
      return { text: (await generateText({ model: chat, messages, maxRetries: 0 })).text };
    }
    case "responses":
      // openai("…") is the AI SDK's default: the Responses API.
      return { text: (await generateText({ model: openai("gpt"), prompt: "Say hello", maxRetries: 0 })).text };
    case "embeddings": {
      const r = await embed({ model: openai.embedding("embed"), value: "first text", maxRetries: 0 });
      return { dims: r.embedding.length };
    }
  }
  throw new Error(`no ${feature} case for ${client}`);
}

async function anthropicJs() {
  const c = new Anthropic({ baseURL: base, apiKey: "unused", maxRetries: 0 });
  const ask = (extra) =>
    c.messages.create({ model: "claude", max_tokens: 64, messages: [{ role: "user", content: "Say hello" }], ...extra });
  switch (feature) {
    case "plain":
      return { text: (await ask()).content[0].text };
    case "stream": {
      const s = c.messages.stream({ model: "claude", max_tokens: 64, messages: [{ role: "user", content: "Say hello" }] });
      let text = "";
      s.on("text", (t) => { text += t; });
      await s.finalMessage();
      return { text };
    }
    case "tools": {
      const r = await ask({ tools: [{ name: "get_weather", input_schema: weatherParams }] });
      return { tool: r.content.find((b) => b.type === "tool_use").name };
    }
    case "image": {
      const content = [
        { type: "image", source: { type: "base64", media_type: "image/png", data: PIXEL } },
        { type: "text", text: "What is in this image?" },
      ];
      return { text: (await ask({ messages: [{ role: "user", content }] })).content[0].text };
    }
  }
  throw new Error(`no ${feature} case for ${client}`);
}

const run = { "openai-js": openaiJs, "ai-sdk": aiSdk, "anthropic-js": anthropicJs }[client];
if (!run) throw new Error(`unknown client ${client}`);
console.log(JSON.stringify(await run()));
