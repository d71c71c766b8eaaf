--- User options: defaults, validation and the resolved table the other modules read.
local M = {}

---@class lowentropy.Options
M.defaults = {
  -- Clients with this name (or whose server calls itself "lowentropy") get the plugin's features.
  client_name = 'lowentropy',
  ghost_text = {
    enabled = true,
    -- 'auto': Neovim's own vim.lsp.inline_completion on 0.12+, this plugin's extmarks before.
    -- false: always this plugin's extmarks (accept word/line, Copilot notifications).
    native = 'auto',
    debounce_ms = 75,
    hl_group = 'LowEntropyGhost',
  },
  next_edit = {
    enabled = true,
    auto = true, -- ask after leaving insert mode and after normal-mode changes
    debounce_ms = 150,
    range_hl_group = 'LowEntropyNextEditRange',
    text_hl_group = 'LowEntropyNextEditText',
  },
  -- Insert mode keys for ghost text, normal mode keys for next edit; false disables one.
  -- A key does its usual thing when there is nothing to accept.
  keymaps = {
    accept = '<Tab>',
    accept_word = '<M-Right>',
    accept_line = '<M-C-Right>',
    dismiss = '<C-]>',
    next_edit_accept = '<Tab>',
    next_edit_jump = '<S-Tab>',
    next_edit_dismiss = false,
  },
  chat = {
    split = 'vertical', -- or 'horizontal'
    size = 0, -- columns (vertical) or lines (horizontal); 0: Neovim's default split
  },
  apply = {
    register = '"', -- the register :LowEntropyApply reads the sketch from
  },
  -- Keys in the diff preview of :LowEntropyApply and :LowEntropyEdit.
  preview = {
    accept = 'a',
    reject = 'q',
  },
}

local options = vim.deepcopy(M.defaults)

local has_011 = vim.fn.has('nvim-0.11') == 1

---@param name string
---@param value any
---@param types string|string[]
---@param optional? boolean
local function check(name, value, types, optional)
  if has_011 then
    vim.validate(name, value, types, optional)
  else
    vim.validate({ [name] = { value, types, optional } })
  end
end

local function key(name, value)
  check(name, value, { 'string', 'boolean' })
  if value == true then
    error(('%s: expected a key or false, got true'):format(name), 0)
  end
end

--- Unknown keys are errors: a typo should not pass silently.
local function known(prefix, given, defaults)
  for k, v in pairs(given) do
    if defaults[k] == nil then
      error(('lowentropy: unknown option %s%s'):format(prefix ~= '' and prefix .. '.' or '', k), 0)
    end
    if type(v) == 'table' and type(defaults[k]) == 'table' then
      known(prefix ~= '' and prefix .. '.' .. k or k, v, defaults[k])
    end
  end
end

local function validate(o)
  check('client_name', o.client_name, 'string')
  check('ghost_text', o.ghost_text, 'table')
  check('ghost_text.enabled', o.ghost_text.enabled, 'boolean')
  check('ghost_text.native', o.ghost_text.native, { 'string', 'boolean' })
  if type(o.ghost_text.native) == 'string' and o.ghost_text.native ~= 'auto' then
    error("ghost_text.native: expected 'auto', true or false", 0)
  end
  check('ghost_text.debounce_ms', o.ghost_text.debounce_ms, 'number')
  check('ghost_text.hl_group', o.ghost_text.hl_group, 'string')
  check('next_edit', o.next_edit, 'table')
  check('next_edit.enabled', o.next_edit.enabled, 'boolean')
  check('next_edit.auto', o.next_edit.auto, 'boolean')
  check('next_edit.debounce_ms', o.next_edit.debounce_ms, 'number')
  check('next_edit.range_hl_group', o.next_edit.range_hl_group, 'string')
  check('next_edit.text_hl_group', o.next_edit.text_hl_group, 'string')
  check('keymaps', o.keymaps, 'table')
  for name in pairs(M.defaults.keymaps) do
    key('keymaps.' .. name, o.keymaps[name])
  end
  check('chat', o.chat, 'table')
  check('chat.split', o.chat.split, 'string')
  if o.chat.split ~= 'vertical' and o.chat.split ~= 'horizontal' then
    error("chat.split: expected 'vertical' or 'horizontal'", 0)
  end
  check('chat.size', o.chat.size, 'number')
  check('apply', o.apply, 'table')
  check('apply.register', o.apply.register, 'string')
  check('preview', o.preview, 'table')
  check('preview.accept', o.preview.accept, 'string')
  check('preview.reject', o.preview.reject, 'string')
end

--- Merge user options over the defaults; raise on invalid ones (the old options stay).
---@param opts? table
function M.set(opts)
  check('opts', opts, 'table', true)
  opts = opts or {}
  known('', opts, M.defaults)
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  validate(merged)
  options = merged
end

---@return lowentropy.Options
function M.get()
  return options
end

--- Whether ghost text uses Neovim's own inline completion (0.12+).
function M.native_ghost_text()
  local native = options.ghost_text.native
  local available = vim.lsp.inline_completion ~= nil
  if native == 'auto' then
    return available
  end
  return native == true and available
end

return M
