--- :LowEntropyChat: a split that streams the answer of `lowentropy/chat`.
---
--- The request carries a `partialResultToken`; the server sends each piece of the
--- answer as `$/progress` `{token, value: {content}}` and the pieces are drawn as
--- they come. The result `{content, citations}` replaces them, and the citations
--- go to the quickfix list. The conversation goes on in the same split until
--- `:LowEntropyChat!` starts a new one.
---
--- Buffer variables of the chat buffer, for statuslines and tests:
---   b:lowentropy_chat_state    'streaming' | 'done' | 'error'
---   b:lowentropy_chat_updates  how many streamed pieces were drawn for the last answer
---   b:lowentropy_chat_streamed the streamed text of the last answer, as drawn
local api = vim.api
local config = require('lowentropy.config')
local lsp = require('lowentropy.lsp')
local progress = require('lowentropy.progress')

local M = {}

---@class lowentropy.Chat
---@field buf integer
---@field messages { role: string, content: string }[]
---@field busy boolean

local chat ---@type lowentropy.Chat?

local function chat_buffer()
  if chat and api.nvim_buf_is_valid(chat.buf) then
    return chat
  end
  local buf = api.nvim_create_buf(false, true)
  api.nvim_buf_set_name(buf, 'lowentropy://chat')
  vim.bo[buf].filetype = 'markdown'
  vim.bo[buf].bufhidden = 'hide'
  chat = { buf = buf, messages = {}, busy = false }
  return chat
end

local function window(buf)
  local win = vim.fn.bufwinid(buf)
  if win ~= -1 then
    return win
  end
  local opts = config.get().chat
  local size = opts.size > 0 and tostring(opts.size) or ''
  local previous = api.nvim_get_current_win()
  vim.cmd(('botright %s%s'):format(size, opts.split == 'vertical' and 'vsplit' or 'split'))
  win = api.nvim_get_current_win()
  api.nvim_win_set_buf(win, buf)
  vim.wo[win].wrap = true
  vim.wo[win].linebreak = true
  api.nvim_set_current_win(previous)
  return win
end

local function append(buf, lines)
  local count = api.nvim_buf_line_count(buf)
  local empty = count == 1 and api.nvim_buf_get_lines(buf, 0, 1, false)[1] == ''
  api.nvim_buf_set_lines(buf, empty and 0 or count, -1, false, lines)
  return api.nvim_buf_line_count(buf)
end

local function follow(buf)
  local win = vim.fn.bufwinid(buf)
  if win ~= -1 then
    api.nvim_win_set_cursor(win, { api.nvim_buf_line_count(buf), 0 })
  end
end

--- Start a new conversation (the split stays).
function M.reset()
  if chat and api.nvim_buf_is_valid(chat.buf) then
    api.nvim_buf_set_lines(chat.buf, 0, -1, false, {})
    chat.messages = {}
  end
end

---@class lowentropy.ChatOpts
---@field bufnr? integer the buffer the question is about (default: current)
---@field line1? integer with `line2`: the selected lines
---@field line2? integer

--- Ask `question` about the current buffer (and selection), streaming into the chat split.
---@param question string
---@param opts? lowentropy.ChatOpts
function M.ask(question, opts)
  opts = opts or {}
  local source = lsp.buffer(opts.bufnr)
  local client = lsp.client(source)
  if not client then
    vim.notify('lowentropy is not attached to this buffer', vim.log.levels.WARN)
    return
  end
  if question:match('^%s*$') then
    vim.notify('lowentropy: ask a question', vim.log.levels.WARN)
    return
  end
  local c = chat_buffer()
  if c.busy then
    vim.notify('lowentropy: the last answer is still coming', vim.log.levels.WARN)
    return
  end
  local context = { textDocument = { uri = vim.uri_from_bufnr(source) } }
  if opts.line1 then
    context.range = lsp.line_range(source, opts.line1, opts.line2, client.offset_encoding)
  elseif source == api.nvim_get_current_buf() then
    context.position = vim.lsp.util.make_position_params(0, client.offset_encoding).position
  end
  table.insert(c.messages, { role = 'user', content = question })

  local buf = c.buf
  window(buf)
  local header = { '## You', '' }
  vim.list_extend(header, vim.split(question, '\n', { plain = true }))
  vim.list_extend(header, { '', '## lowentropy', '' })
  local start = append(buf, header)
  local pieces = {}
  vim.b[buf].lowentropy_chat_state = 'streaming'
  vim.b[buf].lowentropy_chat_updates = 0
  vim.b[buf].lowentropy_chat_streamed = ''

  local function draw(text)
    api.nvim_buf_set_lines(buf, start, -1, false, vim.split(text, '\n', { plain = true }))
    follow(buf)
  end

  local token = progress.token('chat')
  local stop = progress.listen(token, function(value)
    if type(value) ~= 'table' or type(value.content) ~= 'string' or not api.nvim_buf_is_valid(buf) then
      return
    end
    pieces[#pieces + 1] = value.content
    local text = table.concat(pieces)
    draw(text)
    vim.b[buf].lowentropy_chat_updates = vim.b[buf].lowentropy_chat_updates + 1
    vim.b[buf].lowentropy_chat_streamed = text
  end)
  c.busy = true
  local params = { messages = c.messages, context = context, partialResultToken = token }
  lsp.request(client, 'lowentropy/chat', params, function(err, result)
    stop()
    c.busy = false
    if not api.nvim_buf_is_valid(buf) then
      return
    end
    if err then
      draw(table.concat(pieces) .. '\n\n**error:** ' .. err.message)
      vim.b[buf].lowentropy_chat_state = 'error'
      table.remove(c.messages)
      return
    end
    local content = result.content or table.concat(pieces)
    local citations = result.citations or {}
    table.insert(c.messages, { role = 'assistant', content = content })
    local tail = #citations > 0 and ('\n\n_%d citation(s) in the quickfix list (:copen)_'):format(#citations)
      or ''
    draw(content .. tail)
    append(buf, { '' })
    if #citations > 0 then
      vim.fn.setqflist({}, ' ', {
        title = 'lowentropy chat: ' .. question,
        items = vim.lsp.util.locations_to_items(citations, client.offset_encoding),
      })
    end
    vim.b[buf].lowentropy_chat_state = 'done'
  end, source)
end

--- The chat buffer, if one was made.
function M.buffer()
  return chat and api.nvim_buf_is_valid(chat.buf) and chat.buf or nil
end

return M
