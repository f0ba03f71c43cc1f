// Billing and AI clients. Fake credentials planted to test redaction; none of them is real.
import Anthropic from "@anthropic-ai/sdk";
import Stripe from "stripe";

export const anthropic = new Anthropic({ apiKey: "sk-ant-api03-fS2qHx6kwXoIIXGvOoNZYW2mZp0zVZomHFwUbbYr-EqmSM9wCZ7Uw9xfogoEmAA" });
export const stripe = new Stripe("sk_live_vnEN5N1aE6PwZPf1Qh6yYTWm");
const restricted = "rk_live_E4lBYOvfZ8UzDzV8fUkkibjL";

export class OAuthConfig {
  clientId: string = "billing-service";
  clientSecret: string = "Xq7-billing-client-secret";
}

/** Reads releases with a fine-grained token: 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 */
export function releases(): Promise<Response> {
  return fetch("https://api.github.com/repos/acme/app/releases", { headers: { token: restricted } });
}
