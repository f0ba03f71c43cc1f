-- review-lsp for Neovim 0.11+: put this directory on 'runtimepath' (or copy this file to
-- ~/.config/nvim/lsp/review_lsp.lua) and call vim.lsp.enable('review_lsp').
-- Settings use the same schema as review-lsp.toml; see editors/neovim/README.md.
---@type vim.lsp.Config
return {
  cmd = { 'review-lsp', 'serve' },
  filetypes = { 'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'rust', 'go' },
  root_markers = { 'review-lsp.toml', '.git' },
  -- Sent as initializationOptions; e.g. { review = { debounce_ms = 300 } }.
  init_options = {},
  -- review-lsp debounces per document itself; Neovim's own 150 ms delay would only add latency.
  flags = { debounce_text_changes = 0 },
}
