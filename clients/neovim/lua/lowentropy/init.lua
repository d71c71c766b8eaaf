--- lowentropy for Neovim: ghost text, next edit, chat, apply and edit on the lowentropy server.
---
--- The server is started by Neovim's LSP client (`vim.lsp.enable('lowentropy')` with
--- the bundled `lsp/lowentropy.lua`, or nvim-lspconfig). When it attaches to a buffer
--- this module starts ghost text and next edit there and maps their keys.
--- `setup()` is optional: it only changes options.
local api = vim.api
local config = require('lowentropy.config')
local lsp = require('lowentropy.lsp')

local M = {}

local attached = {} ---@type table<integer, boolean>

--- An expr mapping: `action` when `available()`, else the key's own meaning.
local function map(mode, lhs, bufnr, available, action, desc)
  if not lhs then
    return
  end
  vim.keymap.set(mode, lhs, function()
    if available(bufnr) then
      return ('<Cmd>lua require("lowentropy").%s()<CR>'):format(action)
    end
    return lhs
  end, { buffer = bufnr, expr = true, silent = true, desc = 'lowentropy: ' .. desc })
end

local function unmap(mode, lhs, bufnr)
  if lhs then
    pcall(vim.keymap.del, mode, lhs, { buffer = bufnr })
  end
end

--- Start the plugin's features in a buffer the lowentropy client attached to.
---@param bufnr integer
function M.attach(bufnr)
  if attached[bufnr] then
    return
  end
  attached[bufnr] = true
  require('lowentropy.progress').install() -- before the server's first partial result
  local opts = config.get()
  local keys = opts.keymaps
  local ghost = require('lowentropy.ghost')
  local next_edit = require('lowentropy.next_edit')
  if opts.ghost_text.enabled then
    ghost.attach(bufnr)
    map('i', keys.accept, bufnr, ghost.visible, 'accept', 'accept the suggestion')
    if not config.native_ghost_text() then
      map('i', keys.accept_word, bufnr, ghost.visible, 'accept_word', 'accept a word')
      map('i', keys.accept_line, bufnr, ghost.visible, 'accept_line', 'accept a line')
      map('i', keys.dismiss, bufnr, ghost.visible, 'dismiss', 'dismiss the suggestion')
    end
  end
  if opts.next_edit.enabled then
    next_edit.attach(bufnr)
    map('n', keys.next_edit_accept, bufnr, next_edit.visible, 'next_edit_accept', 'accept the next edit')
    map('n', keys.next_edit_jump, bufnr, next_edit.visible, 'next_edit_jump', 'go to the next edit')
    map('n', keys.next_edit_dismiss, bufnr, next_edit.visible, 'next_edit_dismiss', 'dismiss the next edit')
  end
  require('lowentropy.apply').entered(bufnr)
end

--- Stop the plugin's features in a buffer.
---@param bufnr integer
function M.detach(bufnr)
  if not attached[bufnr] then
    return
  end
  attached[bufnr] = nil
  local keys = config.get().keymaps
  require('lowentropy.ghost').detach(bufnr)
  require('lowentropy.next_edit').detach(bufnr)
  for _, k in ipairs({ 'accept', 'accept_word', 'accept_line', 'dismiss' }) do
    unmap('i', keys[k], bufnr)
  end
  for _, k in ipairs({ 'next_edit_accept', 'next_edit_jump', 'next_edit_dismiss' }) do
    unmap('n', keys[k], bufnr)
  end
end

--- Whether the plugin's features run in a buffer.
function M.is_attached(bufnr)
  return attached[lsp.buffer(bufnr)] == true
end

--- Change options (see `config.defaults`); buffers already attached pick them up.
---@param opts? table
function M.setup(opts)
  local buffers = vim.tbl_keys(attached)
  for _, bufnr in ipairs(buffers) do
    M.detach(bufnr)
  end
  config.set(opts)
  for _, bufnr in ipairs(buffers) do
    if api.nvim_buf_is_valid(bufnr) and lsp.client(bufnr) then
      M.attach(bufnr)
    end
  end
end

-- Key actions (called from the mappings above).
function M.accept()
  return require('lowentropy.ghost').accept()
end
function M.accept_word()
  return require('lowentropy.ghost').accept_word()
end
function M.accept_line()
  return require('lowentropy.ghost').accept_line()
end
function M.dismiss()
  return require('lowentropy.ghost').dismiss()
end
function M.next_edit_accept()
  return require('lowentropy.next_edit').accept()
end
function M.next_edit_jump()
  return require('lowentropy.next_edit').jump()
end
function M.next_edit_dismiss()
  return require('lowentropy.next_edit').dismiss()
end

return M
