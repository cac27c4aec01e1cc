import t from 'tap';
import { openMemoryStore } from '../../helpers/memory-store.js';
import { storeContract } from './contract.js';

storeContract(t, async () => {
  const store = openMemoryStore();
  return { store, second: () => store.share() };
});
