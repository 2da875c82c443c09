// The test bank bot on telegraf, unmodified, against vestnik's Bot API
// (test_botapi.py), polling or (VN_WEBHOOK_PORT set) with a webhook on
// its own HTTPS server (VN_WEBHOOK_KEY/VN_WEBHOOK_CERT), answering in the
// webhook replies. Env: VN_BOT_TOKEN, VN_BOT_API (with the trailing slash
// telegraf needs to keep a path); NODE_PATH finds telegraf.
'use strict';
const fs = require('fs');
const { Telegraf, Markup, Input } = require('telegraf');

const token = process.env.VN_BOT_TOKEN;
const bot = new Telegraf(token, { telegram: { apiRoot: process.env.VN_BOT_API + '/' } });

bot.start((ctx) =>
  ctx.reply('Welcome to Vestnik Bank', Markup.inlineKeyboard([
    [Markup.button.callback('Balance', 'balance')],
    [Markup.button.callback('Support', 'support')],
  ])));
bot.command('temp', async (ctx) => {
  const sent = await ctx.telegram.sendMessage(ctx.chat.id, 'temporary');
  await ctx.deleteMessage(sent.message_id);
});
bot.on('callback_query', async (ctx) => {
  await ctx.answerCbQuery('You chose ' + ctx.callbackQuery.data);
  await ctx.editMessageText('Chosen: ' + ctx.callbackQuery.data);
});
bot.on('document', async (ctx) => {
  const link = await ctx.telegram.getFileLink(ctx.message.document.file_id);
  const res = await fetch(link);
  const data = Buffer.from(await res.arrayBuffer());
  await ctx.replyWithDocument(Input.fromBuffer(Buffer.concat([Buffer.from('echo:'), data]), 'echo.txt'));
});
bot.catch((err) => console.error('bot error', err));

const port = process.env.VN_WEBHOOK_PORT;
const launch = port
  ? bot.launch({
    webhook: {
      domain: `https://127.0.0.1:${port}`,
      port: Number(port),
      host: '127.0.0.1',
      secretToken: 'test-secret',
      tlsOptions: {
        key: fs.readFileSync(process.env.VN_WEBHOOK_KEY),
        cert: fs.readFileSync(process.env.VN_WEBHOOK_CERT),
      },
    },
  }, () => console.log('started (webhook)'))
  : bot.launch(() => console.log('started (polling)'));
launch.catch((err) => { console.error('launch failed', err); process.exit(1); });
