// bank_bot.js - Example Bank's notification and support bot, written with
// grammY as for Telegram and run against vestnik's Bot API by changing the
// API root only (doc/services.md, "Bank bot").
//
// Customers write /start to bankbot@bots.<host> from any XMPP client and
// get a menu (Balance, Recent payments, Support). The bank's systems
// notify them of card payments with a POST to this bot's local HTTP port;
// the notification has "It was me" / "Block my card" buttons. Support
// questions go to the bank's operators (SUPPORT_CHAT_IDS), who answer with
// "/reply <chat id> <text>". On start it publishes its profile in the
// services directory (category bank), where customers find it.
//
// Environment: BOT_TOKEN (from `vestnikctl bot add bankbot`), BOT_API
// (vestnik's https listener, e.g. https://chat.example.org:5281),
// NOTIFY_PORT (default 8088, bound to 127.0.0.1), SUPPORT_CHAT_IDS
// (comma-separated chat ids of operators who started the bot).
'use strict';
const http = require('http');
const { Bot, InlineKeyboard } = require('grammy');

const bot = new Bot(process.env.BOT_TOKEN, { client: { apiRoot: process.env.BOT_API } });
const operators = (process.env.SUPPORT_CHAT_IDS || '').split(',').filter(Boolean).map(Number);

// A demo ledger; a real bank asks its core banking system.
const accounts = new Map();
function account(chatId) {
  if (!accounts.has(chatId)) {
    accounts.set(chatId, { balance: 1250.0, payments: [], cardBlocked: false, inSupport: false });
  }
  return accounts.get(chatId);
}

const menu = () => new InlineKeyboard()
  .text('Balance', 'balance').text('Recent payments', 'payments').row()
  .text('Support', 'support');

bot.command('start', (ctx) => {
  account(ctx.chat.id);
  return ctx.reply('Welcome to Example Bank. What would you like to do?', { reply_markup: menu() });
});

bot.callbackQuery('balance', async (ctx) => {
  const acc = account(ctx.chat.id);
  await ctx.answerCallbackQuery();
  await ctx.editMessageText(`Your balance: ${acc.balance.toFixed(2)} EUR`, { reply_markup: menu() });
});

bot.callbackQuery('payments', async (ctx) => {
  const acc = account(ctx.chat.id);
  const lines = acc.payments.slice(-5).map((p) => `${p.amount.toFixed(2)} EUR at ${p.merchant}`);
  await ctx.answerCallbackQuery();
  await ctx.editMessageText(lines.length ? 'Recent payments:\n' + lines.join('\n') : 'No payments yet.',
    { reply_markup: menu() });
});

bot.callbackQuery('support', async (ctx) => {
  account(ctx.chat.id).inSupport = true;
  await ctx.answerCallbackQuery();
  await ctx.reply('Write your question; an operator will answer here.');
});

bot.callbackQuery(/^ok:(\d+)$/, async (ctx) => {
  await ctx.answerCallbackQuery({ text: 'Thank you for confirming.' });
  await ctx.editMessageText(ctx.callbackQuery.message.text.split('\n')[0] + '\nConfirmed by you.');
});

bot.callbackQuery(/^block:(\d+)$/, async (ctx) => {
  account(ctx.chat.id).cardBlocked = true;
  await ctx.answerCallbackQuery({ text: 'Your card is blocked. We will call you.' });
  await ctx.editMessageText(ctx.callbackQuery.message.text.split('\n')[0] + '\nCard blocked.');
});

// An operator's answer: /reply <chat id> <text>
bot.command('reply', async (ctx) => {
  if (!operators.includes(ctx.chat.id)) return;
  const match = /^(\d+)\s+([\s\S]+)$/.exec(ctx.match);
  if (!match) return ctx.reply('Usage: /reply <chat id> <text>');
  await ctx.api.sendMessage(Number(match[1]), 'Example Bank support: ' + match[2]);
  return ctx.reply('Sent.');
});

bot.on('message:text', async (ctx) => {
  const acc = account(ctx.chat.id);
  if (!acc.inSupport) {
    return ctx.reply('Choose from the menu.', { reply_markup: menu() });
  }
  for (const op of operators) {
    await ctx.api.sendMessage(op, `Question from ${ctx.from.username} (chat ${ctx.chat.id}):\n${ctx.message.text}`);
  }
  return ctx.reply('Your question was passed to an operator.');
});

bot.catch((err) => console.error('bank bot:', err.error || err));

// The bank's systems: POST /notify {"chat_id": N, "amount": 12.5, "merchant": "Cafe"}
let paymentNumber = 0;
http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/notify') {
    res.writeHead(404).end();
    return;
  }
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', async () => {
    try {
      const { chat_id: chatId, amount, merchant } = JSON.parse(body);
      const acc = account(chatId);
      const n = ++paymentNumber;
      acc.balance -= amount;
      acc.payments.push({ amount, merchant });
      await bot.api.sendMessage(chatId, `Card payment: ${amount.toFixed(2)} EUR at ${merchant}.`, {
        reply_markup: new InlineKeyboard().text('It was me', `ok:${n}`).text('Block my card', `block:${n}`),
      });
      res.writeHead(204).end();
    } catch (err) {
      console.error('notify:', err.description || err.message);
      res.writeHead(err.error_code === 403 ? 403 : 400).end();
    }
  });
}).listen(Number(process.env.NOTIFY_PORT || 8088), '127.0.0.1');

// The bank's entry in the server's services directory (vestnik's
// setMyProfile, not a Telegram method: grammY calls it through api.raw).
async function publishProfile() {
  try {
    await bot.api.raw.setMyProfile({
      name: 'Example Bank',
      category: 'bank',
      description: 'Card alerts, balance and support',
      operator: 'Example Bank plc',
      privacy: 'https://bank.example.org/privacy',
    });
  } catch (err) {
    console.error('profile:', err.description || err.message);
  }
}

bot.start({
  onStart: (me) => {
    console.log(`bank bot running as ${me.username}`);
    publishProfile();
  },
});
