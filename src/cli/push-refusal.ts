/**
 * A registry refusing a push, said in terms of what to do: log in (no credentials, or refused ones),
 * create the model (r8.im), check the account's rights. Used by `cog push` after a refusal and by the
 * check before a build that pushes. Never names a credential.
 */
import { CogError } from '../errors.js';
import { RegistryError } from '../registry/errors.js';
import type { Reference } from '../registry/reference.js';
import { defaultReplicateHost } from '../registry/settings.js';

/** Registry refusals, said in terms of `cog push` and what to do about them. Never names a credential. */
export function explainPushError(
  err: unknown,
  ref: Pick<Reference, 'registry' | 'repository'>,
  hadCredentials: boolean,
  env: NodeJS.ProcessEnv = {},
): unknown {
  if (!(err instanceof RegistryError)) return err;
  const where = `${ref.registry}/${ref.repository}`;
  // one of the pair alone counts for nothing: say which is missing
  const halfSet = ['COG_REGISTRY_USERNAME', 'COG_REGISTRY_PASSWORD'].filter((name) => !env[name]);
  if (err.status === 401)
    return new CogError(
      hadCredentials
        ? `${ref.registry} rejected the credentials for pushing to ${where}`
        : `${ref.registry} requires authentication to push to ${where}, and no credentials for it were found`,
      {
        hint: hadCredentials
          ? `log in again with \`cog login ${ref.registry}\` (or fix COG_REGISTRY_USERNAME / COG_REGISTRY_PASSWORD)`
          : halfSet.length === 1
            ? `${halfSet[0]} is not set (the other one is): set both, or log in with \`cog login ${ref.registry}\``
            : `log in with \`cog login ${ref.registry}\`, or set COG_REGISTRY_USERNAME and COG_REGISTRY_PASSWORD`,
        cause: err,
      },
    );
  if (ref.registry === defaultReplicateHost && err.status === 404)
    return new CogError(`unable to find an existing Replicate model at ${where}`, {
      hint: `create the model on replicate.com first (https://replicate.com/create), then push again; also check that you are logged in as its owner (\`cog login\`)`,
      cause: err,
    });
  if (err.status === 403)
    return new CogError(`${ref.registry} denied pushing to ${where}`, {
      hint:
        `check the repository name and that your account (\`cog login ${ref.registry}\`) may push to it` +
        (ref.registry === defaultReplicateHost
          ? '; a model must exist on replicate.com before its first push (https://replicate.com/create)'
          : ''),
      cause: err,
    });
  return err;
}
