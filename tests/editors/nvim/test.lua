-- Neovim (0.7+) built-in LSP client against the real infinity-matrix binary.
-- Run by scripts/editors-e2e.sh:  nvim --headless --clean -u NONE -l? (0.7 has no -l) → -c 'luafile …'
-- Env: IM_SERVER (binary), IM_LLM_URL (OpenAI-compatible base URL), IM_WORKSPACE (a copy of
-- tests/editors/fixture), IM_RESULTS (file: one "PASS name" / "FAIL name: reason" line per check).
local server = assert(os.getenv('IM_SERVER'), 'IM_SERVER')
local llm = assert(os.getenv('IM_LLM_URL'), 'IM_LLM_URL')
local ws = assert(os.getenv('IM_WORKSPACE'), 'IM_WORKSPACE')
local results_file = assert(os.getenv('IM_RESULTS'), 'IM_RESULTS')

local out = assert(io.open(results_file, 'a'))
-- Neovim's LSP log is shared between runs: this run's lines start here.
local log_start = (function()
  local f = io.open(vim.lsp.get_log_path(), 'r')
  if not f then return 0 end
  local n = f:seek('end')
  f:close()
  return n
end)()
local function report(line)
  out:write(line .. '\n')
  out:flush()
  io.stderr:write('[nvim] ' .. line .. '\n')
end

local function check(name, fn)
  local ok, err = pcall(fn)
  if ok then report('PASS nvim: ' .. name) else report('FAIL nvim: ' .. name .. ': ' .. tostring(err)) end
end

local function wait_for(what, timeout_ms, cond)
  if not vim.wait(timeout_ms, cond, 50) then error('timed out waiting for ' .. what, 2) end
end

-- What the server tells us ------------------------------------------------------------------
local events = {}       -- infinityMatrix/taskEvent params
local asked = {}        -- window/showMessageRequest messages answered
local applied = 0       -- workspace/applyEdit requests seen
local shown = {}        -- window/showDocument URIs
local messages = {}     -- window/showMessage texts

local handlers = {
  ['infinityMatrix/taskEvent'] = function(_, params) table.insert(events, params) end,
  ['infinityMatrix/agentStatus'] = function() end,
  -- The default handler (vim.fn.inputlist) blocks a headless run: answer "Apply" instead.
  ['window/showMessageRequest'] = function(_, params)
    table.insert(asked, params.message)
    for _, action in ipairs(params.actions or {}) do
      if action.title == 'Apply' then return action end
    end
    return vim.NIL
  end,
  -- What a stock client shows of an answer: recorded, then handled as Neovim does.
  ['window/showDocument'] = function(err, params, ctx, config)
    table.insert(shown, params.uri)
    local default = vim.lsp.handlers['window/showDocument']
    if default then return default(err, params, ctx, config) end
    return { success = true }
  end,
  ['window/showMessage'] = function(err, params, ctx, config)
    table.insert(messages, params.message)
    return vim.lsp.handlers['window/showMessage'](err, params, ctx, config)
  end,
  ['workspace/applyEdit'] = function(err, params, ctx, config)
    applied = applied + 1
    return vim.lsp.handlers['workspace/applyEdit'](err, params, ctx, config)
  end,
}

local function task_state(agent, state)
  for _, e in ipairs(events) do
    if e.type == 'state' and e.task.agent == agent and e.task.state == state then return e.task end
  end
end

local function streamed(task_id)
  local parts = {}
  for _, e in ipairs(events) do
    if e.type == 'chunk' and e.taskId == task_id then table.insert(parts, e.text) end
  end
  return table.concat(parts)
end

local function buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
end

-- Start ------------------------------------------------------------------------------------------
vim.cmd('edit ' .. vim.fn.fnameescape(ws .. '/calc.py'))
local bufnr = vim.api.nvim_get_current_buf()
local client_id = vim.lsp.start_client({
  name = 'infinity-matrix',
  cmd = { server, 'lsp' },
  root_dir = ws,
  handlers = handlers,
  flags = { debounce_text_changes = 0 },
  init_options = {
    config = {
      providers = { fake = { kind = 'openai', base_url = llm, model = 'm' } },
      defaults = { providers = { 'fake' } },
      agents = {
        autoedit = {
          description = 'Auto edit',
          output = 'edit',
          approval = 'auto',
          triggers = { 'command', 'codeAction' },
          prompt = 'Fix this {{language}} code.\n\n```{{language}}\n{{selection}}\n```\n\nReply with exactly one fenced code block containing the complete replacement for the code shown.',
        },
      },
    },
  },
})
vim.lsp.buf_attach_client(bufnr, client_id)
local client

check('initialize: the server declares its capabilities', function()
  wait_for('initialize', 15000, function()
    client = vim.lsp.get_client_by_id(client_id)
    return client ~= nil and client.initialized
  end)
  local caps = client.server_capabilities
  assert(caps.documentSymbolProvider, 'no documentSymbolProvider')
  assert(caps.codeActionProvider, 'no codeActionProvider')
  assert(caps.executeCommandProvider and #caps.executeCommandProvider.commands == 6, 'executeCommandProvider commands')
end)

check('textDocument/documentSymbol lists the functions', function()
  local resp = client.request_sync('textDocument/documentSymbol', { textDocument = vim.lsp.util.make_text_document_params(bufnr) }, 10000, bufnr)
  assert(resp and not resp.err, 'request failed: ' .. vim.inspect(resp and resp.err))
  local names = {}
  for _, s in ipairs(resp.result) do names[s.name] = true end
  for _, n in ipairs({ 'add', 'sub', 'scale' }) do assert(names[n], 'missing symbol ' .. n .. ' in ' .. vim.inspect(vim.tbl_keys(names))) end
end)

-- vim.ui.select picks the code action titled `wanted` (the default UI would wait for a key).
local function pick_code_action(wanted)
  vim.ui.select = function(items, opts, on_choice)
    for i, item in ipairs(items) do
      local title = opts.format_item and opts.format_item(item) or tostring(item)
      if title == wanted then return on_choice(item, i) end
    end
    error('no code action ' .. wanted)
  end
end

check('a code action runs an agent (Explain) and its answer streams back', function()
  pick_code_action('Explain')
  vim.lsp.buf.range_code_action({ diagnostics = {} }, { 4, 0 }, { 6, 15 })
  wait_for('the explain task to succeed', 30000, function() return task_state('explain', 'succeeded') ~= nil end)
  local t = task_state('explain', 'succeeded')
  local text = streamed(t.id)
  assert(text:find('FAKE%-ANSWER%-END'), 'streamed text: ' .. text)
  assert(t.provider == 'fake', 'provider ' .. tostring(t.provider))
end)

check('the Explain answer reaches a stock client (window/showDocument or window/showMessage)', function()
  local function answered()
    for _, uri in ipairs(shown) do
      local f = io.open(vim.uri_to_fname(uri), 'r')
      if f then
        local text = f:read('*a')
        f:close()
        if text:find('FAKE%-ANSWER%-END') then return 'document ' .. uri end
      end
    end
    for _, m in ipairs(messages) do
      if m:find('answered', 1, true) and m:find('FAKE%-ANSWER') then return 'message' end
    end
  end
  wait_for('the answer through standard LSP', 15000, function() return answered() ~= nil end)
  io.stderr:write('[nvim] answer shown as ' .. answered() .. '\n')
end)

check("an auto agent's edit lands in the buffer through workspace/applyEdit", function()
  pick_code_action('Auto edit')
  local before = applied
  vim.lsp.buf.range_code_action({ diagnostics = {} }, { 9, 0 }, { 11, 15 })
  wait_for('the auto edit', 30000, function() return buffer_text(bufnr):find('FIXED: validate the inputs of sub', 1, true) ~= nil end)
  assert(applied > before, 'no workspace/applyEdit')
  assert(#asked == 0, 'an auto edit asked for approval')
  assert(buffer_text(bufnr):find('FIXME: validate the inputs of add', 1, true), 'the edit went outside its selection')
end)

check('a manual approval is answered through window/showMessageRequest (Apply)', function()
  vim.lsp.buf.execute_command({
    command = 'infinity-matrix.startAgent',
    arguments = { {
      agent = 'fix',
      textDocument = vim.lsp.util.make_text_document_params(bufnr),
      range = { start = { line = 3, character = 0 }, ['end'] = { line = 6, character = 0 } },
    } },
  })
  wait_for('the approval question', 30000, function() return #asked > 0 end)
  assert(asked[1]:find('proposes an edit', 1, true), 'message: ' .. asked[1])
  wait_for('the approved edit', 30000, function() return buffer_text(bufnr):find('FIXED: validate the inputs of add', 1, true) ~= nil end)
  wait_for('the fix task to succeed', 10000, function() return task_state('fix', 'succeeded') ~= nil end)
end)

check('shutdown', function()
  vim.lsp.stop_client(client_id)
  wait_for('the client to stop', 10000, function() return vim.lsp.get_client_by_id(client_id) == nil end)
end)

-- Neovim logs every stderr line of a server as [ERROR]: the server's informational lines must
-- not be there (they go through window/logMessage with their own level).
check("the LSP log has no server info lines labelled [ERROR]", function()
  local f = io.open(vim.lsp.get_log_path(), 'r')
  if not f then return end -- nothing logged at all
  f:seek('set', log_start)
  local text = f:read('*a')
  f:close()
  for line in text:gmatch('[^\n]+') do
    if line:find('stderr', 1, true) and line:find(' INFO ', 1, true) then
      error('info line logged as an error: ' .. line)
    end
  end
end)

out:close()
vim.cmd('qa!')
