/**
 * How Python we run inside the image talks HTTP to the model's own server (at 127.0.0.1): straight
 * there. cog.yaml's `environment` may set HTTP(S)_PROXY (users behind a corporate proxy do) and it
 * becomes the image's env, which the model's code should see as set; but urllib's default opener takes
 * it too, and sends even 127.0.0.1's requests to the proxy unless NO_PROXY names it.
 */

/** Python: `to_server`, an opener without proxies, for a script to include and `to_server.open(url_or_request, timeout=…)`. */
export const serverOpenerPython = String.raw`
import urllib.request
to_server = urllib.request.build_opener(urllib.request.ProxyHandler({}))
`;
