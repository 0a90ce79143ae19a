/**
 * The one redaction of secrets, applied at every boundary where text leaves the process: log
 * lines, CLI stdout and stderr (errors, `status` text and JSON, echoed URLs) and HTTP bodies
 * (the API, /metrics, /readyz). It hides
 * - the password of a URL's userinfo (`postgres://u:X@h`, `http://u:X@h`), and
 * - the value of every password-like parameter (`password`, `pass`, `pwd`, `secret`, `token`,
 *   `key`, `sslpassword`, `api_key`, …) in a query string or a libpq keyword string
 *   (`?user=u&password=X`, `password=X`), also when the name, the `=` or the separator is
 *   percent-encoded (`pass%77ord%3DX`, a URL nested in another URL's query).
 * It works on any text, not only on a URL, so an engine's or a driver's error that quotes a URL
 * is covered too. Over-redacting an innocent `monkey=1` is the accepted price.
 */

export const REDACTED = '***';

/** Parameter names (decoded, lower-cased) whose value is a secret. */
const SECRET_NAME = /pass|pwd|secret|token|key|credential|auth|signature/;

/** `scheme://user:password@`: keep the user, hide the password. */
const USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s/?#@:'"]*:)[^\s/?#@'"]*@/gi;
/** `scheme://user%3Apassword@` (an encoded colon inside userinfo). */
const ENCODED_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s/?#@:'"]*%3A)[^\s/?#@'"]*@/gi;
/**
 * A name=value pair after a separator (`?`, `&`, `;`, white space, start, or their encodings):
 * the name may itself be percent-encoded, the `=` may be `%3D`; the value runs to the next
 * separator.
 */
const PAIR =
  /((?:^|[?&;\s,{("']|%3F|%26|%3B|%20)([A-Za-z0-9_.%-]{1,64}?)(?:=|%3D)(?:"|'|%22)?)((?:(?!%26|%3B|%20|%22|%3F)[^&;\s#"',})])*)/gi;

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name).toLowerCase();
  } catch {
    return name.toLowerCase();
  }
}

/** `text` with every password in a URL and every secret-named parameter's value replaced by `***`. */
export function redactSecrets(text: string): string {
  if (text.length === 0) return text;
  // A value stops at a separator, encoded ones included, so a URL nested in a parameter's value
  // has its own parameters checked.
  return text
    .replace(USERINFO, `$1${REDACTED}@`)
    .replace(ENCODED_USERINFO, `$1${REDACTED}@`)
    .replace(PAIR, (whole, head: string, name: string, value: string) =>
      value.length > 0 && value !== REDACTED && SECRET_NAME.test(decodeName(name)) ? `${head}${REDACTED}` : whole,
    );
}

/** Deep copy of a log object or report with every string redacted (for structured output). */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redactSecrets(value) as T;
  if (Array.isArray(value)) return value.map(redactDeep) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v)])) as T;
  }
  return value;
}
