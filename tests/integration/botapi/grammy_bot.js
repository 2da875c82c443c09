// The test bank bot on grammY, unmodified, against vestnik's Bot API
// (test_botapi.py). Env: VN_BOT_TOKEN, VN_BOT_API (the API root, no
// trailing slash: grammY refuses one); NODE_PATH finds grammy.
'use strict';
const { Bot, InlineKeyboard, InputFile } = require('grammy');

const token = process.env.VN_BOT_TOKEN;
const apiRoot = process.env.VN_BOT_API;
const bot = new Bot(token, { client: { apiRoot } });

bot.command('start', (ctx) =>
  ctx.reply('Welcome to Vestnik Bank', {
    reply_markup: new InlineKeyboard().text('Balance', 'balance').row().text('Support', 'support'),
  }));
bot.command('temp', async (ctx) => {
  const sent = await ctx.reply('temporary', { reply_to_message_id: ctx.message.message_id });
  await ctx.api.deleteMessage(ctx.chat.id, sent.message_id);
});
bot.on('callback_query:data', async (ctx) => {
  await ctx.answerCallbackQuery({ text: 'You chose ' + ctx.callbackQuery.data });
  await ctx.editMessageText('Chosen: ' + ctx.callbackQuery.data);
});
bot.on('message:document', async (ctx) => {
  const file = await ctx.getFile();
  const res = await fetch(`${apiRoot}/file/bot${token}/${file.file_path}`);
  const data = Buffer.from(await res.arrayBuffer());
  await ctx.replyWithDocument(new InputFile(Buffer.concat([Buffer.from('echo:'), data]), 'echo.txt'),
    { caption: 'grammy echo' });
});
bot.catch((err) => console.error('bot error', err));
bot.start({ onStart: (me) => console.log('started as', me.username) });
