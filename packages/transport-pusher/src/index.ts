export { attachPusher, type PusherAttachment, type PusherOptions } from './attach.js';
export { PusherApps, type PusherApp } from './apps.js';
export { appPrefix, heraldChannel, pusherChannel } from './channels.js';
export { PusherCode } from './messages.js';
