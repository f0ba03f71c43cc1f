-- Headless Neovim as a real client of review-lsp, using the shipped editors/neovim config.
-- Usage: nvim --headless --clean -l tests/nvim/e2e.lua <repo> <server-binary> <file.py> [base_url]
-- With a base_url, the settings point the LLM agents at that OpenAI-compatible server.
-- Prints one JSON line with what it saw; exits non-zero on the first failed expectation.
local repo, bin, file, base_url = arg[1], arg[2], arg[3], arg[4]

local function fail(msg)
  io.stderr:write('FAIL: ' .. msg .. '\n')
  os.exit(1)
end

vim.opt.runtimepath:prepend(repo .. '/editors/neovim')
-- Only the binary path differs from the shipped config (the test binary is not on PATH).
local overrides = { cmd = { bin, 'serve' } }
if base_url then
  overrides.init_options = { llm = { provider = 'openai', base_url = base_url, model = 'local-model' } }
end
vim.lsp.config('review_lsp', overrides)
vim.lsp.enable('review_lsp')

local progress = {}
vim.api.nvim_create_autocmd('LspProgress', {
  callback = function(ev)
    table.insert(progress, ev.data.params.value.kind)
  end,
})

vim.cmd.edit(file)

local function find(code)
  for _, d in ipairs(vim.diagnostic.get(0)) do
    if d.code == code then
      return d
    end
  end
end

if not vim.wait(15000, function() return find('python/security/eval') ~= nil end, 20) then
  fail('no python/security/eval diagnostic; got ' .. vim.inspect(vim.diagnostic.get(0)))
end
if base_url and not vim.wait(15000, function() return find('python/security/llm') ~= nil end, 20) then
  fail('no diagnostic from the OpenAI-compatible server; got ' .. vim.inspect(vim.diagnostic.get(0)))
end
local client = vim.lsp.get_clients({ name = 'review_lsp' })[1]
if not client then fail('client not attached') end

-- Apply the quick fix for `== None` through the real code-action path.
local d = find('python/correctness/none-comparison')
if not d then fail('no none-comparison diagnostic') end
vim.api.nvim_win_set_cursor(0, { d.lnum + 1, d.col })
vim.lsp.buf.code_action({
  apply = true,
  filter = function(a) return a.isPreferred == true end,
})
local fixed_line = d.lnum + 1
if not vim.wait(10000, function()
  return vim.api.nvim_buf_get_lines(0, fixed_line - 1, fixed_line, false)[1]:find('is None', 1, true) ~= nil
end, 20) then
  fail('quick fix not applied: ' .. vim.api.nvim_buf_get_lines(0, fixed_line - 1, fixed_line, false)[1])
end
-- The server re-reviews the edited buffer and the finding goes away.
if not vim.wait(10000, function() return find('python/correctness/none-comparison') == nil end, 20) then
  fail('none-comparison still reported after the fix')
end

-- The scan command, with $/progress begin and end.
local done, result, err = false, nil, nil
client:request('workspace/executeCommand', { command = 'review-lsp.scanWorkspace', arguments = {} }, function(e, r)
  done, err, result = true, e, r
end)
if not vim.wait(30000, function() return done end, 20) then fail('scan did not finish') end
if err then fail('scan failed: ' .. vim.inspect(err)) end
vim.wait(2000, function() return vim.tbl_contains(progress, 'end') end, 20)
if not vim.tbl_contains(progress, 'begin') or not vim.tbl_contains(progress, 'end') then
  fail('progress not seen: ' .. vim.inspect(progress))
end

io.stdout:write(vim.json.encode({
  llm = find('python/security/llm') ~= nil,
  fixed = vim.api.nvim_buf_get_lines(0, fixed_line - 1, fixed_line, false)[1],
  scanned = result.files_scanned,
  progress = progress,
}) .. '\n')
vim.lsp.stop_client(client.id)
vim.wait(2000, function() return #vim.lsp.get_clients() == 0 end, 20)
os.exit(0)
