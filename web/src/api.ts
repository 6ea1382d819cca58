// The gateway's public API over gRPC-Web, from the client generated out of
// our .proto files (src/gen, `npm run generate`).
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { Inpainting } from "./gen/inpaint/v1/gateway_pb";

export type InpaintingClient = Client<typeof Inpainting>;

/** A client of this page's own origin, sending `apiKey()` when set. */
export function connect(apiKey: () => string): InpaintingClient {
  const auth: Interceptor = (next) => async (req) => {
    const key = apiKey();
    if (key) req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
  const transport = createGrpcWebTransport({
    baseUrl: location.origin,
    interceptors: [auth],
  });
  return createClient(Inpainting, transport);
}

/** A field the server named and why it refused it. */
export interface FieldError {
  field: string;
  reason: string;
}

/**
 * The field an error message names: the gateway answers INVALID_ARGUMENT
 * as "FIELD: reason" (with the field in a BadRequest detail too), and a
 * failed job's error reads "InvalidArgument: FIELD: reason". Submissions
 * name fields under "request.", which is dropped.
 */
export function fieldOf(message: string): FieldError | undefined {
  const m = /^(?:InvalidArgument: )?([a-z_][a-z0-9_.[\]]*): (.+)$/s.exec(message.trim());
  if (!m) return undefined;
  return { field: m[1].replace(/^request\./, ""), reason: m[2] };
}

/** The message to show a person for an error of a call. */
export function describe(err: unknown): { code: Code | undefined; message: string } {
  const e = ConnectError.from(err);
  return { code: e.code, message: e.rawMessage || Code[e.code] };
}

/** A random idempotency key (the page may be served over plain HTTP, where crypto.randomUUID is missing). */
export function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
