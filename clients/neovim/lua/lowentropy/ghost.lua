--- Ghost text for Neovim 0.10/0.11: `textDocument/inlineCompletion` rendered with extmarks.
---
--- Requests go out on TextChangedI/CursorMovedI after `ghost_text.debounce_ms`.
--- The first line of a suggestion is inline virtual text at the cursor, the rest
--- virtual lines below. Typing the suggestion's next characters keeps the rest
--- on screen. Accepting runs the item's `command` (the server counts it);
--- showing and partly accepting are reported with Copilot's notifications
--- `textDocument/didShowCompletion` and `textDocument/didPartiallyAcceptCompletion`.
local api = vim.api
local config = require('lowentropy.config')
local lsp = require('lowentropy.lsp')

local M = {}

local ns = api.nvim_create_namespace('lowentropy.ghost')
local uv = vim.uv or vim.loop

---@class lowentropy.Suggestion
---@field client_id integer
---@field item table the InlineCompletionItem as received
---@field full string the item's whole insert text
---@field row integer 0-based row of the cursor the rest is shown at
---@field col integer 0-based byte column of that cursor
---@field prefix string the line's text before `col`
---@field text string what is still to insert (a suffix of `full`)
---@field replace integer bytes after the cursor that the item replaces
---@field extmark? integer

---@class lowentropy.GhostBuffer
---@field timer? uv.uv_timer_t
---@field pending? { client: vim.lsp.Client, id: integer }
---@field shown? lowentropy.Suggestion

local buffers = {} ---@type table<integer, lowentropy.GhostBuffer>

local function state(bufnr)
  local st = buffers[bufnr]
  if not st then
    st = {}
    buffers[bufnr] = st
  end
  return st
end

local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function line_at(bufnr, row)
  return api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
end

local function expand_tabs(text)
  return (text:gsub('\t', string.rep(' ', vim.bo.tabstop)))
end

--- The namespace ghost text is drawn in (Neovim's own on the native path).
function M.namespace()
  if config.native_ghost_text() then
    return api.nvim_create_namespace('nvim.lsp.inline_completion')
  end
  return ns
end

local function cancel(st)
  if st.pending then
    pcall(lsp.cancel, st.pending.client, st.pending.id)
    st.pending = nil
  end
end

local function render(bufnr, s)
  local hl = config.get().ghost_text.hl_group
  local lines = vim.split(s.text, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { expand_tabs(lines[i]), hl } }
  end
  local opts = {
    id = s.extmark,
    virt_text = lines[1] ~= '' and { { lines[1], hl } } or nil,
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
  }
  s.extmark = api.nvim_buf_set_extmark(bufnr, ns, s.row, s.col, opts)
end

--- Remove the ghost text (the pending request stays unless `cancel_pending`).
---@param bufnr? integer
---@param cancel_pending? boolean
function M.clear(bufnr, cancel_pending)
  bufnr = lsp.buffer(bufnr)
  local st = buffers[bufnr]
  if not st then
    return
  end
  if cancel_pending then
    cancel(st)
    if st.timer then
      st.timer:stop()
    end
  end
  st.shown = nil
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  end
end

--- Whether ghost text is on screen in the buffer.
function M.visible(bufnr)
  bufnr = lsp.buffer(bufnr)
  if config.native_ghost_text() then
    return #api.nvim_buf_get_extmarks(bufnr, M.namespace(), 0, -1, { limit = 1 }) > 0
  end
  local st = buffers[bufnr]
  return st ~= nil and st.shown ~= nil
end

--- The suggestion as the cursor sees it, or nil when it does not fit there.
local function suggestion(bufnr, client, item, row, col)
  local full = item.insertText
  if type(full) == 'table' then -- a StringValue snippet: show and insert its plain text
    full = full.value:gsub('%${%d+:([^}]*)}', '%1'):gsub('%$%d+', '')
  end
  if type(full) ~= 'string' or full == '' then
    return nil
  end
  local line = line_at(bufnr, row)
  local start_col, end_col = col, col
  if item.range then
    local enc = client.offset_encoding
    if item.range.start.line ~= row or item.range['end'].line ~= row then
      return nil
    end
    start_col = lsp.byte_col(line, item.range.start.character, enc)
    end_col = math.max(col, lsp.byte_col(line, item.range['end'].character, enc))
  end
  local typed = line:sub(start_col + 1, col)
  if start_col > col or full:sub(1, #typed) ~= typed or #typed >= #full then
    return nil
  end
  return {
    client_id = client.id,
    item = item,
    full = full,
    row = row,
    col = col,
    prefix = line:sub(1, col),
    text = full:sub(#typed + 1),
    replace = end_col - col,
  }
end

local function show(bufnr, s)
  local before = state(bufnr).shown
  -- The same text at the same place (typing through): not a new suggestion to report.
  local same = before ~= nil
    and before.row == s.row
    and before.col == s.col
    and before.text == s.text
  M.clear(bufnr)
  state(bufnr).shown = s
  render(bufnr, s)
  local client = vim.lsp.get_client_by_id(s.client_id)
  if client and not same then
    lsp.notify(client, 'textDocument/didShowCompletion', { item = s.item })
  end
end

--- Ask the server for a suggestion at the cursor (insert mode, current buffer only).
---@param bufnr? integer
function M.request(bufnr)
  bufnr = lsp.buffer(bufnr)
  if bufnr ~= api.nvim_get_current_buf() or api.nvim_get_mode().mode:sub(1, 1) ~= 'i' then
    return
  end
  local client = lsp.client(bufnr)
  if not client then
    return
  end
  local st = state(bufnr)
  cancel(st)
  local row, col = cursor()
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = 2 } -- Automatic
  local id
  local ok, request_id = lsp.request(client, 'textDocument/inlineCompletion', params, function(err, result)
    if st.pending and st.pending.id == id then
      st.pending = nil
    end
    if err or not api.nvim_buf_is_valid(bufnr) then
      return
    end
    -- Stale: the text or the cursor moved on since the request went out.
    if api.nvim_buf_get_changedtick(bufnr) ~= tick or api.nvim_get_current_buf() ~= bufnr then
      return
    end
    local now_row, now_col = cursor()
    if now_row ~= row or now_col ~= col or api.nvim_get_mode().mode:sub(1, 1) ~= 'i' then
      return
    end
    local items = result and (result.items or result) or {}
    local s = items[1] and suggestion(bufnr, client, items[1], row, col)
    if s then
      show(bufnr, s)
    else
      M.clear(bufnr)
    end
  end, bufnr)
  id = request_id
  if ok and id then
    st.pending = { client = client, id = id }
  end
end

local function schedule(bufnr)
  local st = state(bufnr)
  st.timer = st.timer or uv.new_timer()
  st.timer:stop()
  st.timer:start(
    config.get().ghost_text.debounce_ms,
    0,
    vim.schedule_wrap(function()
      if api.nvim_buf_is_valid(bufnr) then
        M.request(bufnr)
      end
    end)
  )
end

--- On a change or a move in insert mode: keep what the user typed through, then ask again.
local function on_change(bufnr)
  local st = state(bufnr)
  local s = st.shown
  if s then
    local row, col = cursor()
    local line = line_at(bufnr, row)
    local typed = (row == s.row and col >= s.col and line:sub(1, s.col) == s.prefix)
        and line:sub(s.col + 1, col)
      or nil
    if typed == '' then
      return -- nothing new (CursorMovedI right after TextChangedI for the same key)
    elseif typed and #typed < #s.text and s.text:sub(1, #typed) == typed then
      s.col, s.prefix, s.text = col, line:sub(1, col), s.text:sub(#typed + 1)
      s.replace = 0
      render(bufnr, s)
    else
      M.clear(bufnr)
    end
  end
  schedule(bufnr)
end

--- Insert `text` at the suggestion's cursor (replacing `replace` bytes after it); move past it.
local function insert(bufnr, s, text, replace)
  local lines = vim.split(text, '\n', { plain = true })
  api.nvim_buf_set_text(bufnr, s.row, s.col, s.row, s.col + replace, lines)
  local row = s.row + #lines - 1
  local col = (#lines == 1 and s.col or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { row + 1, col })
  return row, col
end

--- Accept the whole suggestion. Returns false when there is none.
---@param bufnr? integer
function M.accept(bufnr)
  bufnr = lsp.buffer(bufnr)
  if config.native_ghost_text() then
    return vim.lsp.inline_completion.get({ bufnr = bufnr }) ~= false
  end
  local st = buffers[bufnr]
  local s = st and st.shown
  if not s then
    return false
  end
  M.clear(bufnr, true)
  insert(bufnr, s, s.text, s.replace)
  local client = vim.lsp.get_client_by_id(s.client_id)
  if client and s.item.command then
    lsp.execute(client, s.item.command, bufnr)
  end
  return true
end

local function accept_part(bufnr, piece_of)
  bufnr = lsp.buffer(bufnr)
  local st = buffers[bufnr]
  local s = st and st.shown
  if not s then
    return false
  end
  local piece = piece_of(s.text)
  if piece == '' or piece == s.text then
    return M.accept(bufnr)
  end
  cancel(st)
  s.row, s.col = insert(bufnr, s, piece, 0)
  s.prefix = line_at(bufnr, s.row):sub(1, s.col)
  s.text = s.text:sub(#piece + 1)
  render(bufnr, s)
  local client = vim.lsp.get_client_by_id(s.client_id)
  if client then
    local accepted = s.full:sub(1, #s.full - #s.text)
    lsp.notify(client, 'textDocument/didPartiallyAcceptCompletion', {
      item = s.item,
      acceptedLength = lsp.length(accepted, client.offset_encoding),
    })
  end
  return true
end

--- The next word of a suggestion: leading blanks, then a word or a run of punctuation.
local function next_word(text)
  return text:match('^[ \t]*[%w_]+')
    or text:match('^[ \t]*[^%w_%s]+')
    or text:match('^[ \t]*\n[ \t]*')
    or text
end

--- The rest of the current line of a suggestion (the next line when it starts with a newline).
local function next_line(text)
  return text:match('^\n[^\n]*') or text:match('^[^\n]+') or text
end

function M.accept_word(bufnr)
  return accept_part(bufnr, next_word)
end

function M.accept_line(bufnr)
  return accept_part(bufnr, next_line)
end

--- Hide the suggestion until the next change.
function M.dismiss(bufnr)
  bufnr = lsp.buffer(bufnr)
  if not M.visible(bufnr) then
    return false
  end
  M.clear(bufnr, true)
  return true
end

--- Start ghost text in a buffer.
---@param bufnr integer
function M.attach(bufnr)
  if config.native_ghost_text() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    return
  end
  local group = api.nvim_create_augroup('lowentropy.ghost.' .. bufnr, { clear = true })
  api.nvim_create_autocmd({ 'TextChangedI', 'CursorMovedI' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      on_change(bufnr)
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr, true)
    end,
  })
  api.nvim_create_autocmd('BufWipeout', {
    group = group,
    buffer = bufnr,
    callback = function()
      M.detach(bufnr)
    end,
  })
end

---@param bufnr integer
function M.detach(bufnr)
  if config.native_ghost_text() then
    pcall(vim.lsp.inline_completion.enable, false, { bufnr = bufnr })
    return
  end
  M.clear(bufnr, true)
  local st = buffers[bufnr]
  if st and st.timer then
    st.timer:close()
  end
  buffers[bufnr] = nil
  pcall(api.nvim_del_augroup_by_name, 'lowentropy.ghost.' .. bufnr)
end

return M
