import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { ApiError } from '../errors.js';
import type { Profile, ProfileSet } from '../../profiles/profile.js';
import { requireAdmin } from '../auth.js';
import { errors } from '../schemas.js';

const profileResponse = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    description: { type: 'string' },
    kind: { type: 'string', enum: ['kernel', 'chain', 'local', 'flow'] },
    builtin: { type: 'boolean' },
    file: { type: 'string' },
    artifacts: {
      type: 'object',
      additionalProperties: { type: 'object', properties: { url: { type: 'string' }, sha256: { type: 'string' }, size: { type: 'integer' } } },
    },
    flow: { type: 'object', properties: { precache: { type: 'string' }, install: { type: 'string' } } },
    requires: { type: 'array', items: { type: 'string' } },
  },
} as const;

function view(p: Profile): Static<typeof profileResponse> {
  return {
    name: p.name,
    description: p.description,
    kind: p.flow ? 'flow' : (p.boot?.kind ?? 'local'),
    builtin: p.builtin,
    file: p.file,
    artifacts: p.artifacts,
    ...(p.flow && { flow: p.flow }),
    requires: p.requires,
  };
}

export const profileRoutes: FastifyPluginAsyncTypebox<{ profiles: () => ProfileSet; adminTokens: readonly string[] }> = async (
  app,
  { profiles, adminTokens },
) => {
  const onRequest = requireAdmin(adminTokens);
  const security = [{ bearer: [] }];
  app.get(
    '/api/v1/profiles',
    {
      onRequest,
      schema: {
        summary: 'The loaded profiles, and the files that failed to load',
        tags: ['profiles'],
        security,
        response: {
          200: {
            type: 'object',
            properties: {
              profiles: { type: 'array', items: profileResponse },
              problems: { type: 'array', items: { type: 'object', properties: { file: { type: 'string' }, message: { type: 'string' } } } },
            },
          },
          ...errors(401),
        },
      },
    },
    async () => {
      const set = profiles();
      return { profiles: set.list().map(view), problems: [...set.problems] };
    },
  );
  app.get(
    '/api/v1/profiles/:name',
    {
      onRequest,
      schema: {
        summary: 'One profile',
        tags: ['profiles'],
        security,
        params: Type.Object({ name: Type.String() }),
        response: { 200: profileResponse, ...errors(401, 404) },
      },
    },
    async (req) => {
      const p = profiles().get(req.params.name);
      if (!p) throw new ApiError('profile_not_found', `no profile named ${req.params.name} is loaded`, 404);
      return view(p);
    },
  );
};
