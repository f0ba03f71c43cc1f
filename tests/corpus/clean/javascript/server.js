'use strict';

const express = require('express');
const { randomUUID } = require('node:crypto');

const app = express();
app.use(express.json({ limit: '100kb' }));

const todos = new Map();
const PORT = Number(process.env.PORT ?? 3000);

function validateTodo(body) {
  if (body == null || typeof body !== 'object') {
    return 'body must be a JSON object';
  }
  if (typeof body.title !== 'string' || body.title.trim() === '') {
    return 'title is required';
  }
  if (body.due != null && Number.isNaN(Date.parse(body.due))) {
    return 'due must be a date';
  }
  return null;
}

app.get('/todos', (req, res) => {
  const done = req.query.done;
  let items = [...todos.values()];
  if (done !== undefined) {
    items = items.filter((t) => String(t.done) === done);
  }
  items.sort((a, b) => a.createdAt - b.createdAt);
  res.json(items);
});

app.get('/todos/:id', (req, res) => {
  const todo = todos.get(req.params.id);
  if (!todo) {
    res.status(404).json({ error: 'not found' });
    return;
  }
  res.json(todo);
});

app.post('/todos', (req, res) => {
  const problem = validateTodo(req.body);
  if (problem !== null) {
    res.status(400).json({ error: problem });
    return;
  }
  const todo = {
    id: randomUUID(),
    title: req.body.title.trim(),
    due: req.body.due ?? null,
    done: false,
    createdAt: Date.now(),
  };
  todos.set(todo.id, todo);
  res.status(201).json(todo);
});

app.patch('/todos/:id', (req, res) => {
  const todo = todos.get(req.params.id);
  if (todo === undefined) {
    res.sendStatus(404);
    return;
  }
  if (typeof req.body.done === 'boolean') {
    todo.done = req.body.done;
  }
  res.json(todo);
});

app.delete('/todos/:id', (req, res) => {
  const existed = todos.delete(req.params.id);
  res.sendStatus(existed ? 204 : 404);
});

app.use((err, req, res, next) => {
  console.error(err);
  if (res.headersSent) {
    next(err);
    return;
  }
  res.status(500).json({ error: 'internal error' });
});

if (require.main === module) {
  app.listen(PORT, () => console.log(`listening on ${PORT}`));
}

module.exports = { app, validateTodo };
