import { useEffect, useState } from 'react';

import { getUser, displayName, type User } from './api';

interface UserCardProps {
  userId: number;
  compact?: boolean;
  onSelect?: (user: User) => void;
}

type State =
  | { kind: 'loading' }
  | { kind: 'error'; message: string }
  | { kind: 'ready'; user: User };

export function UserCard({ userId, compact = false, onSelect }: UserCardProps) {
  const [state, setState] = useState<State>({ kind: 'loading' });

  useEffect(() => {
    let cancelled = false;
    setState({ kind: 'loading' });
    getUser(userId).then((result) => {
      if (cancelled) {
        return;
      }
      setState(result.ok ? { kind: 'ready', user: result.value } : { kind: 'error', message: result.error });
    });
    return () => {
      cancelled = true;
    };
  }, [userId]);

  if (state.kind === 'loading') {
    return <div className="user-card user-card--loading" aria-busy="true" />;
  }
  if (state.kind === 'error') {
    return (
      <div className="user-card user-card--error" role="alert">
        Could not load user {userId}: {state.message}
      </div>
    );
  }

  const { user } = state;
  return (
    <button
      type="button"
      className={compact ? 'user-card user-card--compact' : 'user-card'}
      onClick={() => onSelect?.(user)}
    >
      <span className="user-card__name">{displayName(user)}</span>
      {!compact && user.email != null && <a href={`mailto:${user.email}`}>{user.email}</a>}
    </button>
  );
}

export function UserList({ ids }: { ids: number[] }) {
  const [selected, setSelected] = useState<User | null>(null);
  return (
    <section>
      <ul>
        {ids.map((id) => (
          <li key={id}>
            <UserCard userId={id} compact={ids.length > 10} onSelect={setSelected} />
          </li>
        ))}
      </ul>
      {selected !== null && <p>Selected: {selected.name}</p>}
    </section>
  );
}
