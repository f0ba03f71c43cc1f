import { LruCache } from './cache';

declare global {
  var __API_BASE__: string | undefined;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: string; status?: number };

export interface User {
  id: number;
  name: string;
  email: string | null;
}

const cache = new LruCache<string, unknown>({ maxEntries: 200, ttlMs: 30_000 });

function baseUrl(): string {
  return globalThis.__API_BASE__ ?? '/api';
}

async function request<T>(path: string, init: RequestInit = {}): Promise<Result<T>> {
  let response: Response;
  try {
    response = await fetch(`${baseUrl()}${path}`, {
      ...init,
      headers: { 'Content-Type': 'application/json', ...init.headers },
    });
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  if (!response.ok) {
    return { ok: false, error: response.statusText, status: response.status };
  }
  if (response.status === 204) {
    return { ok: true, value: undefined as T };
  }
  return { ok: true, value: (await response.json()) as T };
}

export async function getUser(id: number): Promise<Result<User>> {
  const key = `user:${id}`;
  const hit = cache.get(key);
  if (hit != null) {
    return { ok: true, value: hit as User };
  }
  const result = await request<User>(`/users/${id}`);
  if (result.ok) {
    cache.set(key, result.value);
  }
  return result;
}

export async function getUsers(ids: readonly number[]): Promise<Map<number, User>> {
  const results = await Promise.all(ids.map((id) => getUser(id)));
  const users = new Map<number, User>();
  results.forEach((result, i) => {
    if (result.ok) {
      users.set(ids[i], result.value);
    }
  });
  return users;
}

export async function renameUser(id: number, name: string): Promise<Result<User>> {
  const trimmed = name.trim();
  if (trimmed.length === 0) {
    return { ok: false, error: 'name must not be empty' };
  }
  const result = await request<User>(`/users/${id}`, {
    method: 'PATCH',
    body: JSON.stringify({ name: trimmed }),
  });
  cache.clear();
  return result;
}

export function displayName(user: User): string {
  return user.email == null ? user.name : `${user.name} <${user.email}>`;
}
