import type { DynamicFeature, ExecuteCommandRegistrationOptions, RegistrationData, ServerCapabilities } from 'vscode-languageclient';
import { describe, expect, it } from 'vitest';
import { OWNED_COMMANDS, OwnedCommandsFilter } from '../src/ownedCommands';

function fakeFeature() {
  const registered: string[][] = [];
  let initialized: ServerCapabilities | undefined;
  const inner: DynamicFeature<ExecuteCommandRegistrationOptions> = {
    registrationType: { method: 'workspace/executeCommand' } as DynamicFeature<ExecuteCommandRegistrationOptions>['registrationType'],
    getState: () => ({ kind: 'workspace', id: 'workspace/executeCommand', registrations: registered.length > 0 }),
    fillClientCapabilities: () => undefined,
    initialize: (caps) => {
      initialized = caps;
      if (caps.executeCommandProvider) registered.push(caps.executeCommandProvider.commands);
    },
    register: (data: RegistrationData<ExecuteCommandRegistrationOptions>) => registered.push(data.registerOptions.commands),
    unregister: () => undefined,
    clear: () => undefined,
  };
  return { inner, registered, initialized: () => initialized };
}

const serverCommands = [
  'infinity-matrix.startAgent',
  'infinity-matrix.stopAgent',
  'infinity-matrix.executePrompt',
  'infinity-matrix.cancelTask',
  'infinity-matrix.approve',
  'infinity-matrix.proposeEdit',
];

describe('OwnedCommandsFilter', () => {
  it('drops the extension\'s own commands from the static capability', () => {
    const f = fakeFeature();
    const filter = new OwnedCommandsFilter(f.inner);
    filter.initialize({ executeCommandProvider: { commands: [...serverCommands, 'other.command'] }, hoverProvider: true }, undefined);
    expect(f.registered).toEqual([['other.command']]);
    expect(f.initialized()?.hoverProvider).toBe(true);
  });

  it('and from dynamic registrations', () => {
    const f = fakeFeature();
    new OwnedCommandsFilter(f.inner).register({ id: '1', registerOptions: { commands: ['infinity-matrix.approve', 'x.y'] } });
    expect(f.registered).toEqual([['x.y']]);
  });

  it('passes through capabilities without executeCommandProvider', () => {
    const f = fakeFeature();
    new OwnedCommandsFilter(f.inner).initialize({}, undefined);
    expect(f.initialized()).toEqual({});
    expect(f.registered).toEqual([]);
  });

  it('owns exactly the server\'s commands', () => {
    expect([...OWNED_COMMANDS].sort()).toEqual([...serverCommands].sort());
  });
});
