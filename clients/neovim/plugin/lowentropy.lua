-- lowentropy: commands, highlight groups and the LspAttach hook. Modules load on first use.
if vim.g.loaded_lowentropy then
  return
end
vim.g.loaded_lowentropy = true

if vim.fn.has('nvim-0.10') ~= 1 then
  vim.notify('lowentropy needs Neovim 0.10 or newer', vim.log.levels.WARN)
  return
end

local api = vim.api

api.nvim_set_hl(0, 'LowEntropyGhost', { link = 'Comment', default = true })
api.nvim_set_hl(0, 'LowEntropyNextEditRange', { link = 'DiffDelete', default = true })
api.nvim_set_hl(0, 'LowEntropyNextEditText', { link = 'DiffAdd', default = true })

local group = api.nvim_create_augroup('lowentropy', { clear = true })

api.nvim_create_autocmd('LspAttach', {
  group = group,
  desc = 'lowentropy: ghost text and next edit in buffers the server attaches to',
  callback = function(args)
    local client = vim.lsp.get_client_by_id(args.data.client_id)
    if client and require('lowentropy.lsp').is_ours(client) then
      require('lowentropy').attach(args.buf)
    end
  end,
})

api.nvim_create_autocmd('LspDetach', {
  group = group,
  callback = function(args)
    local client = vim.lsp.get_client_by_id(args.data.client_id)
    if client and require('lowentropy.lsp').is_ours(client) then
      require('lowentropy').detach(args.buf)
    end
  end,
})

api.nvim_create_autocmd('BufEnter', {
  group = group,
  desc = 'lowentropy: remember the buffer :LowEntropyApply targets from a chat split',
  callback = function(args)
    if require('lowentropy').is_attached(args.buf) then
      require('lowentropy.apply').entered(args.buf)
    end
  end,
})

api.nvim_create_user_command('LowEntropyChat', function(cmd)
  local chat = require('lowentropy.chat')
  if cmd.bang then
    chat.reset()
  end
  local ask = function(question)
    if question and question ~= '' then
      chat.ask(question, cmd.range > 0 and { line1 = cmd.line1, line2 = cmd.line2 } or nil)
    end
  end
  if cmd.args ~= '' then
    ask(cmd.args)
  else
    vim.ui.input({ prompt = 'Ask lowentropy: ' }, ask)
  end
end, { nargs = '*', range = true, bang = true, desc = 'lowentropy: ask about the codebase' })

api.nvim_create_user_command('LowEntropyApply', function(cmd)
  local opts = { register = cmd.args }
  if cmd.range > 0 then
    opts.line1, opts.line2 = cmd.line1, cmd.line2
  end
  require('lowentropy.apply').apply(opts)
end, { nargs = '?', range = true, desc = 'lowentropy: apply a sketch (register or selection)' })

api.nvim_create_user_command('LowEntropyEdit', function(cmd)
  require('lowentropy.apply').edit(cmd.args, cmd.line1, cmd.line2)
end, { nargs = '+', range = true, desc = 'lowentropy: rewrite the selected lines as instructed' })

api.nvim_create_user_command('LowEntropyStatus', function()
  require('lowentropy.status').show()
end, { desc = 'lowentropy: index and backend state' })

local next_edit_actions = { 'request', 'accept', 'jump', 'dismiss' }
api.nvim_create_user_command('LowEntropyNextEdit', function(cmd)
  local action = cmd.args ~= '' and cmd.args or 'request'
  if not vim.tbl_contains(next_edit_actions, action) then
    vim.notify('lowentropy: expected one of ' .. table.concat(next_edit_actions, ', '), vim.log.levels.ERROR)
    return
  end
  require('lowentropy.next_edit')[action]()
end, {
  nargs = '?',
  complete = function()
    return next_edit_actions
  end,
  desc = 'lowentropy: next edit (request, accept, jump, dismiss)',
})
