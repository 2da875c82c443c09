// The test bank bot on node-telegram-bot-api 2.x, unmodified, against
// vestnik's Bot API (test_botapi.py); it sends urlencoded forms and
// multipart uploads. Env: VN_BOT_TOKEN, VN_BOT_API; NODE_PATH finds it.
'use strict';
const { Bot, InlineKeyboardBuilder, InputFile } = require('node-telegram-bot-api');

const token = process.env.VN_BOT_TOKEN;
const apiRoot = process.env.VN_BOT_API;
const bot = new Bot(token, { apiRoot });

bot.command('start', (ctx) =>
  ctx.reply('<b>Welcome</b> to Vestnik Bank', {
    parse_mode: 'HTML',
    reply_markup: new InlineKeyboardBuilder().text('Balance', 'balance').row()
      .text('Support', 'support').build(),
  }));
bot.command('temp', async (ctx) => {
  const sent = await ctx.reply('temporary');
  await bot.api.deleteMessage({ chat_id: ctx.chatId, message_id: sent.message_id });
});
bot.on('callback_query', async (ctx) => {
  const query = ctx.callbackQuery;
  await ctx.answerCallbackQuery({ text: 'You chose ' + query.data });
  await bot.api.editMessageText({
    chat_id: query.message.chat.id, message_id: query.message.message_id,
    text: 'Chosen: ' + query.data,
  });
});
bot.on('message', async (ctx) => {
  const doc = ctx.message.document;
  if (!doc) return;
  const file = await bot.api.getFile({ file_id: doc.file_id });
  const res = await fetch(`${apiRoot}/file/bot${token}/${file.file_path}`);
  const data = Buffer.from(await res.arrayBuffer());
  await bot.api.sendDocument({
    chat_id: ctx.chatId,
    document: new InputFile(Buffer.concat([Buffer.from('echo:'), data]), { filename: 'echo.txt' }),
  });
});
bot.catch((err) => console.error('bot error', err));
console.log('started');
bot.startPolling().catch((err) => { console.error('polling failed', err); process.exit(1); });
