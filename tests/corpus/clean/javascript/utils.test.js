const assert = require('node:assert/strict');
const { describe, it } = require('node:test');

const { validateTodo } = require('./server');

describe('validateTodo', () => {
  it('rejects a missing body', () => {
    assert.equal(validateTodo(undefined), 'body must be a JSON object');
    assert.equal(validateTodo(null), 'body must be a JSON object');
  });

  it('requires a title', () => {
    assert.equal(validateTodo({}), 'title is required');
    assert.equal(validateTodo({ title: '   ' }), 'title is required');
  });

  it('checks the due date', () => {
    assert.equal(validateTodo({ title: 'x', due: 'soon' }), 'due must be a date');
    assert.equal(validateTodo({ title: 'x', due: '2024-05-01' }), null);
  });

  it('accepts a plain todo', () => {
    const result = validateTodo({ title: 'buy milk' });
    assert.strictEqual(result, null);
    assert.ok(typeof result === 'object');
  });
});

describe('sorting helpers', () => {
  const byDate = (a, b) => a.createdAt - b.createdAt;

  it('sorts oldest first', () => {
    const items = [{ createdAt: 3 }, { createdAt: 1 }, { createdAt: 2 }];
    items.sort(byDate);
    assert.deepEqual(
      items.map((i) => i.createdAt),
      [1, 2, 3],
    );
  });

  it('keeps equal items stable', () => {
    const items = [
      { createdAt: 1, id: 'a' },
      { createdAt: 1, id: 'b' },
    ];
    items.sort(byDate);
    assert.deepEqual(
      items.map((i) => i.id),
      ['a', 'b'],
    );
  });
});
